package sdktest

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// Start starts the plugin binary at path the way the agent does
// (go-plugin, gRPC only, AutoMTLS, SecureConfig with the binary's
// sha256) and returns a client for it. The process is killed when the
// test ends; its log lines go to t.Log.
func Start(t testing.TB, path string) *sdk.Client {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read plugin binary: %v", err)
	}
	sum := sha256.Sum256(data)
	logs := &testWriter{t: t}
	t.Cleanup(logs.close) // runs last: after the process is gone
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.PluginSet(),
		Cmd:              exec.Command(path),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SecureConfig:     &plugin.SecureConfig{Checksum: sum[:], Hash: sha256.New()},
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:   filepath.Base(path),
			Output: logs,
			Level:  hclog.Info,
		}),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start plugin %s: %v", path, err)
	}
	raw, err := rpc.Dispense(sdk.PluginKey)
	if err != nil {
		t.Fatalf("dispense plugin %s: %v", path, err)
	}
	c, ok := raw.(*sdk.Client)
	if !ok {
		t.Fatalf("plugin %s dispensed a %T, want *sdk.Client", path, raw)
	}
	return c
}

// Build builds the Go main package pkg (an import path, or a path
// relative to the test's package directory) into a temporary directory
// of t and returns the binary's path, named after the package's last
// element.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), path.Base(filepath.ToSlash(pkg)))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	var stderr bytes.Buffer
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, stderr.String())
	}
	return out
}

// testWriter writes to t.Log until closed.
type testWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
}

// ServeIfPlugin makes a plugin package's test binary its own plugin
// binary: when go-plugin started the binary as a plugin process (the
// handshake cookie is set), it serves the plugin newPlugin returns and
// exits; otherwise it returns and the tests run. Call it first in
// TestMain, and start the binary with Self:
//
//	func TestMain(m *testing.M) {
//		sdktest.ServeIfPlugin(New)
//		os.Exit(m.Run())
//	}
//
// The tests then cross the real process boundary without building a
// separate binary.
func ServeIfPlugin(newPlugin func() sdk.Plugin) {
	if os.Getenv(sdk.Handshake.MagicCookieKey) == sdk.Handshake.MagicCookieValue {
		sdk.Serve(newPlugin())
		os.Exit(0)
	}
}

// Self is the path of the running test binary, to start as a plugin.
func Self(t testing.TB) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
