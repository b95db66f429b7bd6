package file

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/cairn-ops/cairn/internal/readlimit"
	"github.com/cairn-ops/cairn/plugins/sdk"
)

// params are the step parameters as written in the manifest.
type params struct {
	Path     string  `json:"path"`
	Content  *string `json:"content"`
	Artifact *string `json:"artifact"`
	Mode     string  `json:"mode"`
	Owner    string  `json:"owner"`
	Group    string  `json:"group"`
}

// config is params checked and resolved against the step context.
type config struct {
	path     string // absolute, clean, inside the root
	name     string // path relative to the root, for os.Root
	rootDir  string
	content  []byte // inline content, when artifactPath is empty
	artifact string // local path of the artifact, when given
	mode     uint32 // unix permission bits, with setuid/setgid/sticky
	uid, gid int    // -1: leave as it is
}

// load decodes and checks the parameters and resolves owner and group in
// the root's /etc/passwd and /etc/group.
func load(sc *sdk.StepContext) (*config, []*sdk.FieldError) {
	p := params{Mode: "0644"}
	errs := sdk.FieldErrors(sdk.DecodeParams(sc, &p))
	bad := errs.Add
	c := &config{rootDir: sc.GetRootDir(), uid: -1, gid: -1}
	if c.rootDir == "" {
		c.rootDir = "/"
	}
	switch {
	case p.Path == "":
		bad("path", "is required")
	case !path.IsAbs(p.Path):
		bad("path", "must be an absolute path inside the root, like /etc/app.conf")
	case slices.Contains(strings.Split(p.Path, "/"), ".."):
		bad("path", "must not contain ..")
	case path.Clean(p.Path) == "/":
		bad("path", "must name a file, not the root")
	default:
		c.path = path.Clean(p.Path)
		c.name = strings.TrimPrefix(c.path, "/")
	}
	switch {
	case p.Content != nil && p.Artifact != nil:
		bad("content", "give either content or artifact, not both")
	case p.Content == nil && p.Artifact == nil:
		if !errs.Has("artifact") {
			bad("content", "give either content or artifact")
		}
	case p.Content != nil:
		c.content = []byte(*p.Content)
	default:
		local, ok := sc.GetArtifacts()[*p.Artifact]
		if !ok {
			bad("artifact", "%q is not among the step's artifacts (%s)", *p.Artifact, artifactNames(sc))
		}
		c.artifact = local
	}
	m, err := strconv.ParseUint(p.Mode, 8, 32)
	if err != nil || m > 0o7777 {
		bad("mode", "want octal permissions like \"0644\", got %q", p.Mode)
	}
	c.mode = uint32(m)
	if p.Owner != "" {
		id, err := lookupID(c.rootDir, "etc/passwd", p.Owner)
		if err != nil {
			bad("owner", "%v", err)
		}
		c.uid = id
	}
	if p.Group != "" {
		id, err := lookupID(c.rootDir, "etc/group", p.Group)
		if err != nil {
			bad("group", "%v", err)
		}
		c.gid = id
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

func artifactNames(sc *sdk.StepContext) string {
	var names []string
	for n := range sc.GetArtifacts() {
		names = append(names, n)
	}
	if len(names) == 0 {
		return "it has none"
	}
	slices.Sort(names)
	return "it has " + strings.Join(names, ", ")
}

// lookupID resolves a user or group: a number is taken as it is; a name
// is looked up in db (etc/passwd or etc/group) under the root, whose
// lines start "name:password:id:".
func lookupID(rootDir, db, name string) (int, error) {
	if id, err := strconv.Atoi(name); err == nil {
		if id < 0 {
			return -1, fmt.Errorf("negative id %d", id)
		}
		return id, nil
	}
	root, err := os.OpenRoot(rootDir)
	if err != nil {
		return -1, fmt.Errorf("open root: %w", err)
	}
	defer root.Close()
	data, err := readlimit.RootFile(root, db, "", maxAccountsBytes)
	if err != nil {
		return -1, fmt.Errorf("look up %q: %w", name, err)
	}
	sc := readlimit.NewLines(bytes.NewReader(data), "/"+db, maxAccountsBytes)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 3 && fields[0] == name {
			id, err := strconv.Atoi(fields[2])
			if err != nil {
				return -1, fmt.Errorf("/%s: bad id for %q: %q", db, name, fields[2])
			}
			return id, nil
		}
	}
	return -1, fmt.Errorf("no %q in /%s under the root", name, db)
}

// maxAccountsBytes bounds /etc/passwd and /etc/group under the root, read
// to look up an owner by name.
const maxAccountsBytes = 64 << 20

// mustLoad is load for the calls that cannot return field errors.
func mustLoad(sc *sdk.StepContext) (*config, error) {
	c, errs := load(sc)
	if len(errs) > 0 {
		return nil, sdk.ParamsError(errs)
	}
	return c, nil
}
