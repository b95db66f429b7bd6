package exec

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// defaultPath is the PATH a step gets when neither its env nor the agent
// sets one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// tailSize bounds the output kept in the step's outputs.
const tailSize = 64 << 10

// maxLogLine bounds one relayed log line; longer lines are split.
const maxLogLine = 4 << 10

// environ builds the program's environment: PATH, HOME and LANG from the
// agent (PATH defaulting to defaultPath), CAIRN_ROOT, then the step's env,
// which wins. Nothing else of the agent's environment is passed on.
func environ(root string, env map[string]string) []string {
	vars := map[string]string{"PATH": defaultPath, "CAIRN_ROOT": root}
	for _, k := range []string{"PATH", "HOME", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			vars[k] = v
		}
	}
	for k, v := range env {
		vars[k] = v
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}

// lookPath finds name in the PATH of env, like exec.LookPath but with the
// step's PATH rather than the agent's. A name with a slash is used as is.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", fmt.Errorf("%w: %s: %w", ErrNotFound, name, err)
		}
		return name, nil
	}
	pathVar := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range filepath.SplitList(pathVar) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // never the working directory
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s not found in PATH %s", ErrNotFound, name, pathVar)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// run is one finished program run.
type run struct {
	exitCode int
	elapsed  time.Duration
	stdout   string // the last tailSize bytes
	stderr   string
}

// logFunc receives each output line; stream is "stdout" or "stderr".
type logFunc func(stream, line string)

// execute runs argv in dir with env until it exits or ctx ends, in its
// own process group, which is killed when ctx ends. A non-zero exit is
// not an error; failing to start, or ctx ending, is.
func execute(ctx context.Context, argv []string, dir string, env []string, log logFunc) (*run, error) {
	prog, err := lookPath(argv[0], env)
	if err != nil {
		return nil, err
	}
	cmd := osexec.CommandContext(ctx, prog, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin = nil
	ownProcessGroup(cmd)
	cmd.WaitDelay = 5 * time.Second

	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	cmd.Stdout, cmd.Stderr = outW, errW
	var mu sync.Mutex // log is called from two goroutines
	locked := func(stream, line string) {
		mu.Lock()
		defer mu.Unlock()
		if log != nil {
			log(stream, line)
		}
	}
	outTail, errTail := &tail{}, &tail{}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); relay(outR, "stdout", outTail, locked) }()
	go func() { defer wg.Done(); relay(errR, "stderr", errTail, locked) }()

	start := time.Now()
	err = runLocked(cmd)
	outW.Close()
	errW.Close()
	wg.Wait()
	r := &run{
		exitCode: cmd.ProcessState.ExitCode(),
		elapsed:  time.Since(start),
		stdout:   outTail.String(),
		stderr:   errTail.String(),
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return r, fmt.Errorf("%s killed after %s: %w", argv[0], r.elapsed.Round(time.Millisecond), ctxErr)
	}
	var exitErr *osexec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return r, fmt.Errorf("run %s: %w", argv[0], err)
	}
	return r, nil
}

// runLocked runs cmd (Start, then Wait) with the goroutine locked to
// its OS thread. The program's parent-death signal (ownProcessGroup)
// fires when the thread that forked it ends, not the process
// (https://go.dev/issue/27505), and Go ends a thread whose goroutine
// exits locked to it: while this goroutine holds the thread, nothing
// else runs there, so the signal comes only when the plugin dies.
func runLocked(cmd *osexec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Run()
}

// relay reads r line by line into t and log until EOF.
func relay(r io.Reader, stream string, t *tail, log logFunc) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			t.Write(line)
			log(stream, clean(strings.TrimRight(string(line), "\r\n")))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			io.Copy(io.Discard, r) // keep the program from blocking on a full pipe
			return
		}
	}
}

// clean makes s valid UTF-8, which protobuf strings must be.
func clean(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// tail keeps the last tailSize bytes written to it.
type tail struct {
	buf []byte
}

func (t *tail) Write(p []byte) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - tailSize; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
}

func (t *tail) String() string { return clean(string(t.buf)) }
