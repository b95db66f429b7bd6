package readlimit

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/internal/bytesize"
)

// This file is the list of every place Cairn reads a file or a stream,
// and the test that keeps the list true.
//
// TestReadSites parses the repository's Go source (not tests, not
// generated code) and finds each call that reads input: os.ReadFile,
// os.Open, io.ReadAll, io.Copy, bufio.NewScanner, bufio.NewReader,
// json.NewDecoder, yaml.NewDecoder, tls.LoadX509KeyPair, a ReadFile
// method (os.Root, fs.FS), a command's Output, grpc.NewServer and
// grpc.NewClient (whose message size limits bound what they receive). A
// call through this package (File, Stream, Read, RootFile, NewReader,
// NewLines, Open, OpenRoot) is listed with its limit. Any other call must
// be in allowed below, with its limit and why it is safe; the test fails
// for one that is not, and for an entry that no longer matches a call.
//
// The whole list, both kinds, is testdata/inputs.md (UPDATE_GOLDEN=1
// rewrites it); docs/security.md points at it.

// site is an allowed read that does not go through this package. key is
// "FILE FUNC CALL": the file from the repository root, the function
// ("Type.Method" for a method; a function literal counts as the function
// it is in) and the call as written, package-qualified ("os.ReadFile",
// "io.Copy") or as a method (".ReadFile", ".Output"). One entry covers
// every such call in that function.
type site struct {
	key   string
	limit string
	why   string
}

// allowed are the reads that do not go through this package, each with
// its limit and why.
var allowed = []site{
	// Regular files (readlimit.Open) streamed into a sha256: constant
	// memory, as long as the file.
	{key: "agent/apply/apply.go checkFile io.Copy", limit: "the file's size; constant memory", why: "hashes a component's file, opened by readlimit.Open (regular files only) inside the artifacts directory"},
	{key: "controller/ctl/release.go checkArtifact io.Copy", limit: "the file's size; constant memory", why: "hashes a component's file, opened by readlimit.Open inside the manifest's directory"},
	{key: "controller/ctl/release_lifecycle.go app.pushFile io.Copy", limit: "the file's size; the DML refuses past max_artifact_bytes (1 GiB default)", why: "hashes a component or evidence file (readlimit.Open) before it is pushed in 1 MiB chunks"},
	{key: "controller/ctl/artifact.go app.newArtifactPushCommand io.Copy", limit: "the file's size; the DML refuses past max_artifact_bytes (1 GiB default)", why: "hashes the file to push (readlimit.Open) before it is pushed in 1 MiB chunks"},
	{key: "internal/digest/digest.go File io.Copy", limit: "the file's size; constant memory", why: "hashes a regular file opened by readlimit.Open"},
	{key: "agent/collector/sw_files.go swHashFile io.Copy", limit: "io.LimitReader: the audit's --max-hash-bytes budget (256 MiB default)", why: "hashes a tracked file under the root, opened by readlimit.OpenRoot"},
	{key: "plugins/builtin/file/state.go hashOf io.Copy", limit: "the file's size; constant memory", why: "hashes the managed file (readlimit.OpenRoot) or the artifact (readlimit.Open)"},
	{key: "plugins/builtin/file/file.go config.fill io.Copy", limit: "the artifact's size; streamed to disk", why: "copies the artifact (readlimit.Open) into the managed file"},
	{key: "plugins/builtin/file/file.go config.remember io.Copy", limit: "the file's size; streamed to disk", why: "keeps the managed file's previous content (larger than 1 MiB) in the cache directory for rollback"},
	{key: "plugins/builtin/file/file.go restore os.Open", limit: "the file's size; streamed to disk", why: "opens the copy of the previous content this plugin saved in its cache directory"},
	{key: "plugins/builtin/file/file.go restore io.Copy", limit: "the file's size; streamed to disk", why: "restores the copy this plugin saved"},
	{key: "plugins/builtin/dpkg/cache.go cacheDeb io.Copy", limit: "the .deb's size; streamed to disk", why: "copies the .deb artifact (readlimit.Open) into the plugin's cache"},

	// The controller's own blob store and upload sessions: files it wrote,
	// bounded when they were written.
	{key: "controller/blob/blob.go Store.Put io.Copy", limit: "the limit Put is given (max_artifact_bytes, max_audit_bytes)", why: "io.LimitReader(limit+1) and ErrTooLarge past it"},
	{key: "controller/blob/blob.go Store.Open os.Open", limit: "the blob's size, bounded when it was stored", why: "a content-addressed file the controller wrote; callers stream it"},
	{key: "controller/blob/blob.go Store.Verify io.Copy", limit: "the blob's size; constant memory", why: "re-hashes a stored blob"},
	{key: "controller/release/release.go Verify io.Copy", limit: "the blob's size; constant memory", why: "hashes a stored artifact to verify a release"},
	{key: "controller/fleet/artifact.go agentService.FetchArtifact os.Open", limit: "the blob's size; sent in 1 MiB chunks", why: "serves a stored artifact to an agent"},
	{key: "controller/dml/dml.go DML.putBlob os.Open", limit: "max_artifact_bytes (blob.Put's limit)", why: "an upload's data file, written by the controller up to the declared size"},
	{key: "controller/dml/dml.go hashFile os.Open", limit: "the upload's size, at most max_artifact_bytes; constant memory", why: "hashes an upload's data file the controller wrote"},
	{key: "controller/dml/dml.go hashFile io.Copy", limit: "the upload's size, at most max_artifact_bytes; constant memory", why: "hashes an upload's data file the controller wrote"},
	{key: "controller/dml/upload.go sessions.readSidecar os.ReadFile", limit: "none: a few hundred bytes the controller wrote itself", why: "an upload session's metadata, written by this process; not input"},

	// Streams bounded on the spot.
	{key: "controller/notify/notify.go Notifier.post io.Copy", limit: "64 KiB (maxResponseBytes), then discarded", why: "drains a webhook's answer with io.LimitReader so the connection can be reused"},
	{key: "plugins/builtin/exec/run.go relay bufio.NewReaderSize", limit: "lines cut at maxLogLine; the last lines kept in a bounded tail", why: "a step program's stdout/stderr, relayed line by line"},
	{key: "plugins/builtin/exec/run.go relay io.Copy", limit: "nothing kept: io.Discard", why: "drains a step program's output after a read error so it does not block"},
	{key: "plugins/sdk/undo.go LoadUndo os.Open", limit: "MaxUndoRecord", why: "the step's undo record in its state directory, read with io.LimitReader and ErrUndoRecord past the limit"},
	{key: "plugins/sdk/undo.go LoadUndo io.ReadAll", limit: "MaxUndoRecord", why: "io.LimitReader(MaxUndoRecord+1) and ErrUndoRecord past it (the SDK is for plugin authors outside this module: no internal/ import)"},

	// Directories opened to fsync them: nothing is read.
	{key: "internal/atomicfile/atomicfile.go SyncDir os.Open", limit: "nothing read", why: "opens a directory to fsync it"},
	{key: "plugins/sdk/undo.go syncDir os.Open", limit: "nothing read", why: "opens the state directory to fsync it"},

	// gRPC: each connection's message size limit bounds what it receives.
	{key: "controller/daemon/serve.go Server.build grpc.NewServer", limit: "4 MiB a message (maxRecvMsgSize)", why: "audits and artifacts arrive in 1 MiB chunks; manifests are at most 1 MiB"},
	{key: "controller/ctl/conn.go dial grpc.NewClient", limit: "256 MiB an answer (maxRecvMsgBytes)", why: "a whole audit (max_audit_bytes, 64 MiB default) or a big rollout's report, from the controller cairnctl verified"},
	{key: "agent/session/agent.go Agent.session grpc.NewClient", limit: "4 MiB a message (maxRecvMsgBytes)", why: "deploy commands (manifest and bundle) and 1 MiB artifact chunks from the controller"},
	{key: "agent/session/enroll.go Enroll grpc.NewClient", limit: "4 MiB a message (maxRecvMsgBytes)", why: "the enrollment answer: a certificate, the CA, a key"},

	// The archive plugin: archive members stream to disk or into a hash;
	// the check pass stops reading past max_bytes, max_entries and
	// max_ratio (ErrLimit) before anything is written.
	{key: "plugins/builtin/archive/read.go walk os.Open", limit: "the archive's size; streamed", why: "the archive artifact, a regular file the agent checked (apply's readlimit.Open) before the step"},
	{key: "plugins/builtin/archive/read.go walkZip io.ReadAll", limit: "4 KiB (io.LimitReader 4097)", why: "a zip symlink's target"},
	{key: "plugins/builtin/archive/check.go scan io.Copy", limit: "max_bytes (4 GiB default) over all members; constant memory", why: "hashes archive members"},
	{key: "plugins/builtin/archive/extract.go writeFile io.Copy", limit: "each member's size, checked against the first pass; streamed to disk", why: "extracts a member"},
	{key: "plugins/builtin/archive/undo.go saveBackup io.Copy", limit: "the replaced file's size; streamed to disk, after the free-space check", why: "backs up a file the extraction replaces, before anything changes"},
	{key: "plugins/builtin/archive/undo.go copyBackup os.Open", limit: "the backup's size; streamed to disk", why: "opens a backup this plugin wrote"},
	{key: "plugins/builtin/archive/undo.go copyBackup io.Copy", limit: "the backup's size; streamed to disk", why: "restores a backup this plugin wrote"},
	{key: "plugins/builtin/archive/extract.go fileSHA io.Copy", limit: "the file's size; constant memory", why: "hashes an extracted file"},

	// The example plugin is a separate binary for plugin authors, who
	// cannot import internal/.
	{key: "plugins/examples/cairn-plugin-motd/motd.go current .ReadFile", limit: "none: the managed file's size (Lstat says it is regular)", why: "reads the one file the example manages under the root; not part of the agent"},
}

// readCalls are the package-qualified calls that read input.
var readCalls = map[string]bool{
	"os.ReadFile": true, "os.Open": true,
	"io.ReadAll": true, "io.Copy": true, "io.CopyN": true,
	"ioutil.ReadAll": true, "ioutil.ReadFile": true,
	"bufio.NewScanner": true, "bufio.NewReader": true, "bufio.NewReaderSize": true,
	"json.NewDecoder": true, "yaml.NewDecoder": true,
	"tls.LoadX509KeyPair": true,
	"grpc.NewServer":      true, "grpc.NewClient": true,
}

// readMethods are method calls that read input: (*os.Root).ReadFile,
// fs.ReadFile-like methods, and a command's whole output.
var readMethods = map[string]bool{".ReadFile": true, ".Output": true, ".CombinedOutput": true}

// helperLimitArg is, for each function of this package, the index of its
// limit argument (-1: it opens a regular file for a caller that bounds
// its own reading).
var helperLimitArg = map[string]int{
	"File": 2, "Stream": 2, "Read": 2, "RootFile": 3, "NewReader": 2, "NewLines": 2,
	"Open": -1, "OpenRoot": -1, "NewOutput": 1,
}

const selfPath = "github.com/cairn-ops/cairn/internal/readlimit"

// found is one read call in the source.
type found struct {
	key   string // FILE FUNC CALL
	pos   string // FILE:LINE
	limit string // for calls through this package
	what  string
}

func TestReadSites(t *testing.T) {
	root := repoRoot(t)
	sites, consts := scan(t, root)
	if len(sites) < 20 {
		t.Fatalf("found only %d read sites under %s; is the walk broken?", len(sites), root)
	}
	allow := map[string]site{}
	for _, s := range allowed {
		if _, dup := allow[s.key]; dup {
			t.Errorf("allowed lists %q twice", s.key)
		}
		if s.limit == "" || s.why == "" {
			t.Errorf("allowed entry %q needs its limit and why", s.key)
		}
		allow[s.key] = s
	}
	used := map[string]bool{}
	for _, f := range sites {
		if f.limit != "" {
			continue
		}
		if _, ok := allow[f.key]; ok {
			used[f.key] = true
			continue
		}
		t.Errorf("%s: %s reads input without a limit.\n"+
			"\tRead it through internal/readlimit (File for a regular file, Stream for a flag that may be /dev/stdin or <(...),\n"+
			"\tRead or NewReader for a stream, RootFile/OpenRoot under a root, NewLines instead of bufio.NewScanner), with a named limit constant;\n"+
			"\tor, if it is bounded another way, add to allowed in internal/readlimit/sites_test.go:\n"+
			"\t\t{key: %q, limit: \"...\", why: \"...\"},", f.pos, strings.Fields(f.key)[2], f.key)
	}
	for _, s := range allowed {
		if !used[s.key] {
			t.Errorf("allowed entry %q matches no call any more: remove it from internal/readlimit/sites_test.go", s.key)
		}
	}
	golden(t, filepath.Join("testdata", "inputs.md"), render(sites, allow, consts))
}

// scan parses the repository and returns its read calls, sorted, and the
// values of the integer constants it could work out ("pkg/path.Name").
func scan(t *testing.T, root string) ([]found, map[string]constant.Value) {
	t.Helper()
	fset := token.NewFileSet()
	type file struct {
		rel, pkg string
		ast      *ast.File
	}
	var files []file
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" ||
				rel == "test" || strings.HasPrefix(name, "test") || strings.HasSuffix(name, "test")) {
				return filepath.SkipDir // test code and test support (testutil, sdktest, ...)
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") || strings.HasSuffix(name, ".pb.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		if ast.IsGenerated(f) {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		files = append(files, file{rel: rel, pkg: "github.com/cairn-ops/cairn/" + filepath.ToSlash(filepath.Dir(rel)), ast: f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Constants, by package path and name, for the limits' values.
	exprs := map[string]ast.Expr{}
	imports := map[string]map[string]string{} // file → local name → path
	for _, f := range files {
		imports[f.rel] = importNames(f.ast)
		for _, d := range f.ast.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						exprs[f.pkg+"."+n.Name] = vs.Values[i]
					}
				}
			}
		}
	}
	// A constant's expression is evaluated in its own file's imports.
	owner := map[string]file{}
	for _, f := range files {
		for _, d := range f.ast.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
				for _, spec := range g.Specs {
					for _, n := range spec.(*ast.ValueSpec).Names {
						owner[f.pkg+"."+n.Name] = f
					}
				}
			}
		}
	}
	consts := map[string]constant.Value{}
	var eval func(pkg string, imps map[string]string, e ast.Expr, depth int) constant.Value
	lookup := func(key string, depth int) constant.Value {
		if v, ok := consts[key]; ok {
			return v
		}
		e, ok := exprs[key]
		if !ok || depth > 10 {
			return constant.MakeUnknown()
		}
		o := owner[key]
		v := eval(o.pkg, imports[o.rel], e, depth+1)
		consts[key] = v
		return v
	}
	eval = func(pkg string, imps map[string]string, e ast.Expr, depth int) constant.Value {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.INT {
				return constant.MakeFromLiteral(e.Value, e.Kind, 0)
			}
		case *ast.ParenExpr:
			return eval(pkg, imps, e.X, depth)
		case *ast.Ident:
			return lookup(pkg+"."+e.Name, depth)
		case *ast.SelectorExpr:
			if x, ok := e.X.(*ast.Ident); ok {
				if path, ok := imps[x.Name]; ok {
					return lookup(path+"."+e.Sel.Name, depth)
				}
			}
		case *ast.CallExpr: // a conversion: int64(x)
			if len(e.Args) == 1 {
				return eval(pkg, imps, e.Args[0], depth)
			}
		case *ast.BinaryExpr:
			x, y := eval(pkg, imps, e.X, depth), eval(pkg, imps, e.Y, depth)
			if x.Kind() == constant.Unknown || y.Kind() == constant.Unknown {
				return constant.MakeUnknown()
			}
			if e.Op == token.SHL || e.Op == token.SHR {
				s, ok := constant.Uint64Val(y)
				if !ok {
					return constant.MakeUnknown()
				}
				return constant.Shift(x, e.Op, uint(s))
			}
			op := e.Op
			if op == token.QUO && x.Kind() == constant.Int && y.Kind() == constant.Int {
				op = token.QUO_ASSIGN // integer division, as Go's constants
			}
			return constant.BinaryOp(x, op, y)
		}
		return constant.MakeUnknown()
	}

	// Wrappers: functions that pass one of their parameters on as the
	// limit of a read (the collectors' readHostFile(env, p, limit)). Their
	// calls are listed like this package's, with the caller's limit. A
	// wrapper may call another: find them all first.
	wrappers := map[string]int{} // "pkg/path.Func" → its limit parameter
	limitArg := func(f file, call *ast.CallExpr) (int, bool) {
		switch fun := call.Fun.(type) {
		case *ast.SelectorExpr:
			if x, ok := fun.X.(*ast.Ident); ok {
				path, isPkg := imports[f.rel][x.Name]
				if isPkg && path == selfPath {
					idx, ok := helperLimitArg[fun.Sel.Name]
					return idx, ok
				}
				if isPkg {
					idx, ok := wrappers[path+"."+fun.Sel.Name]
					return idx, ok
				}
			}
		case *ast.Ident:
			idx, ok := wrappers[f.pkg+"."+fun.Name]
			return idx, ok
		}
		return 0, false
	}
	for range 5 {
		grew := false
		for _, f := range files {
			for _, d := range f.ast.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Body == nil || fn.Recv != nil {
					continue
				}
				params := paramIndex(fn)
				key := f.pkg + "." + fn.Name.Name
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok {
						return true
					}
					if idx, ok := limitArg(f, call); ok && idx >= 0 && idx < len(call.Args) {
						if id, ok := call.Args[idx].(*ast.Ident); ok {
							if p, ok := params[id.Name]; ok {
								if _, known := wrappers[key]; !known {
									wrappers[key], grew = p, true
								}
							}
						}
					}
					return true
				})
			}
		}
		if !grew {
			break
		}
	}

	var sites []found
	for _, f := range files {
		imps := imports[f.rel]
		for _, d := range f.ast.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			fname := funcName(fn)
			params := paramIndex(fn)
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				at := fmt.Sprintf("%s:%d", f.rel, fset.Position(call.Pos()).Line)
				if idx, ok := limitArg(f, call); ok && f.pkg != selfPath {
					s := found{key: f.rel + " " + fname + " " + source(fset, call.Fun), pos: at, limit: "regular file, read by the caller"}
					if idx >= 0 && idx < len(call.Args) {
						arg := call.Args[idx]
						s.limit = describeLimit(fset, arg, eval(f.pkg, imps, arg, 0))
						if id, ok := arg.(*ast.Ident); ok {
							if _, ok := params[id.Name]; ok {
								s.limit = "the caller's (" + id.Name + ")"
							}
						}
						if idx >= 1 {
							s.what = source(fset, call.Args[idx-1])
						}
					}
					sites = append(sites, s)
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || f.pkg == selfPath {
					return true
				}
				x, isIdent := sel.X.(*ast.Ident)
				path, isPkg := "", false
				if isIdent {
					path, isPkg = imps[x.Name]
				}
				switch {
				case isPkg:
					name := pkgName(path) + "." + sel.Sel.Name
					if readCalls[name] && !decodesMemory(name, call, imps) {
						sites = append(sites, found{key: f.rel + " " + fname + " " + name, pos: at})
					}
				default:
					m := "." + sel.Sel.Name
					if readMethods[m] && (m == ".ReadFile" || len(call.Args) == 0) {
						sites = append(sites, found{key: f.rel + " " + fname + " " + m, pos: at})
					}
				}
				return true
			})
		}
	}
	// By position, then by key: two reads on one line (a reader wrapped
	// in another) keep one order however many sites there are.
	slices.SortFunc(sites, func(a, b found) int {
		if c := strings.Compare(a.pos, b.pos); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	return sites, consts
}

// paramIndex maps each parameter of fn to its position.
func paramIndex(fn *ast.FuncDecl) map[string]int {
	m := map[string]int{}
	i := 0
	for _, field := range fn.Type.Params.List {
		if len(field.Names) == 0 {
			i++
			continue
		}
		for _, n := range field.Names {
			m[n.Name] = i
			i++
		}
	}
	return m
}

// decodesMemory reports whether call, a decoder's constructor, decodes
// bytes already in memory (bytes.NewReader, strings.NewReader): those
// were read, with their limit, where they came from.
func decodesMemory(name string, call *ast.CallExpr, imps map[string]string) bool {
	if !strings.HasSuffix(name, ".NewDecoder") || len(call.Args) != 1 {
		return false
	}
	arg, ok := call.Args[0].(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := arg.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	if !ok {
		return false
	}
	path := imps[x.Name]
	return (path == "bytes" || path == "strings") && sel.Sel.Name == "NewReader"
}

// importNames maps each import's local name to its path.
func importNames(f *ast.File) map[string]string {
	m := map[string]string{}
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		name := pkgName(path)
		switch {
		case imp.Name != nil:
			name = imp.Name.Name
		case strings.HasPrefix(name, "v") && len(name) <= 3: // .../v1
			name = filepath.Base(filepath.Dir(path))
		}
		m[name] = path
	}
	return m
}

// pkgName is the name a package is known by, whatever it is imported as.
func pkgName(path string) string {
	if path == "go.yaml.in/yaml/v3" || path == "gopkg.in/yaml.v3" {
		return "yaml"
	}
	return filepath.Base(path)
}

// funcName is "Name" or "Type.Name" for a method.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok {
		t = ix.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}

func source(fset *token.FileSet, e ast.Expr) string {
	var b strings.Builder
	printer.Fprint(&b, fset, e)
	return b.String()
}

// describeLimit renders a limit argument: its value and, when it is not
// a literal, the expression ("1 MiB (manifest.MaxBytes)").
func describeLimit(fset *token.FileSet, e ast.Expr, v constant.Value) string {
	src := source(fset, e)
	if v.Kind() != constant.Int {
		return src
	}
	n, ok := constant.Uint64Val(v)
	if !ok {
		return src
	}
	if _, lit := e.(*ast.BasicLit); lit {
		return bytesize.Format(n)
	}
	return bytesize.Format(n) + " (" + src + ")"
}

// render writes the list of inputs as Markdown.
func render(sites []found, allow map[string]site, _ map[string]constant.Value) string {
	var b strings.Builder
	b.WriteString("<!-- Written by TestReadSites (internal/readlimit/sites_test.go); UPDATE_GOLDEN=1 rewrites it. -->\n")
	b.WriteString("# Every read of a file or stream, and its limit\n\n")
	b.WriteString("## Through internal/readlimit\n\n| where | function | helper | input | limit |\n|---|---|---|---|---|\n")
	for _, s := range sites {
		if s.limit == "" {
			continue
		}
		k := strings.Fields(s.key)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", k[0], k[1], k[2], cell(s.what), cell(s.limit))
	}
	b.WriteString("\n## Bounded another way (the allowed table)\n\n| where | function | call | limit | why |\n|---|---|---|---|---|\n")
	seen := map[string]bool{}
	for _, s := range sites {
		a, ok := allow[s.key]
		if s.limit != "" || !ok || seen[s.key] {
			continue
		}
		seen[s.key] = true
		k := strings.Fields(s.key)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", k[0], k[1], k[2], cell(a.limit), cell(a.why))
	}
	return b.String()
}

func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.ReplaceAll(s, "|", `\|`)
}

// repoRoot is the module root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// golden compares got with the file at path, or rewrites it when
// UPDATE_GOLDEN=1.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s is out of date (-want +got); review the change and rewrite it with UPDATE_GOLDEN=1:\n%s", path, diff)
	}
}
