package archive

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// params are the step's parameters.
type params struct {
	// Artifact names the archive in the step's artifacts.
	Artifact string `json:"artifact"`
	// Dest is the absolute directory inside the root to extract into.
	Dest string `json:"dest"`
	// Format is tar, tar.gz or zip; empty means detect by magic bytes.
	Format string `json:"format"`
	// StripComponents drops that many leading path elements from every
	// name (after a leading "./"), like tar --strip-components.
	StripComponents int `json:"strip_components"`
	// ModeMask is ANDed with every entry's permission bits: an octal
	// string ("0755") or a number. The default 01777 keeps the sticky bit
	// and drops setuid and setgid.
	ModeMask *modeMask `json:"mode_mask"`
	// MaxBytes bounds the bytes the archive's files hold once extracted
	// (their logical size: a sparse member counts what would be written).
	MaxBytes *float64 `json:"max_bytes"`
	// MaxEntries bounds the paths the archive makes: its members, of every
	// kind, and the directories their names need that it does not list.
	MaxEntries *float64 `json:"max_entries"`
	// MaxRatio bounds the extracted bytes per byte of the archive file.
	MaxRatio *float64 `json:"max_ratio"`
}

// Default limits. A step raises them with the parameters of the same
// names.
const (
	// DefaultMaxBytes is 4 GiB: larger than any application bundle a
	// step should ship as one archive, and small enough to refuse a bomb
	// before it fills a disk.
	DefaultMaxBytes = 4 << 30
	// DefaultMaxEntries is 100,000 members: the largest common source
	// trees (the Linux kernel, about 90,000 files) fit; more is a bomb
	// made of empty members or a mistake.
	DefaultMaxEntries = 100_000
	// DefaultMaxRatio is 200 extracted bytes per archive byte. Software
	// compresses 2 to 5 times, text and logs 10 to 20; deflate's ceiling
	// is about 1,030 (zeros), which is what bombs use. 200 leaves ten
	// times the room the most compressible real content needs and limits
	// a bomb to 200 times its size.
	DefaultMaxRatio = 200
	// ratioFloor is how many bytes may be extracted from any archive
	// before max_ratio applies, so that a tiny archive of a compressible
	// file is not refused.
	ratioFloor = 1 << 20
	// maxLimit bounds what the limit parameters may be raised to.
	maxLimit = 1 << 50
)

// limits are a step's limits, decoded.
type limits struct {
	bytes, entries int64
	ratio          float64
}

func (p *params) limits() limits {
	l := limits{bytes: DefaultMaxBytes, entries: DefaultMaxEntries, ratio: DefaultMaxRatio}
	if p.MaxBytes != nil {
		l.bytes = int64(*p.MaxBytes)
	}
	if p.MaxEntries != nil {
		l.entries = int64(*p.MaxEntries)
	}
	if p.MaxRatio != nil {
		l.ratio = *p.MaxRatio
	}
	return l
}

// modeMask accepts an octal string or a number.
type modeMask uint32

func (m *modeMask) UnmarshalJSON(b []byte) error {
	var n float64
	if err := json.Unmarshal(b, &n); err == nil {
		if n < 0 || n > 0o7777 || n != float64(uint32(n)) {
			return fmt.Errorf("mode_mask %v: want 0 to 07777", n)
		}
		*m = modeMask(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("mode_mask: want an octal string like \"0755\" or a number")
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0o"), 8, 32)
	if err != nil || v > 0o7777 {
		return fmt.Errorf("mode_mask %q: want an octal string from \"0\" to \"07777\"", s)
	}
	*m = modeMask(v)
	return nil
}

// defaultModeMask keeps the permission bits and the sticky bit (a
// shared directory like tmp/ needs it) and drops setuid and setgid.
const defaultModeMask = 0o1777

func (p *params) mask() uint32 {
	if p.ModeMask == nil {
		return defaultModeMask
	}
	return uint32(*p.ModeMask)
}

// decode reads and checks the parameters.
func decode(sc *sdk.StepContext) (*params, []*sdk.FieldError) {
	var p params
	errs := sdk.FieldErrors(sdk.DecodeParams(sc, &p))
	add := errs.Add
	switch {
	case p.Artifact == "":
		add("artifact", "required: the name of the archive among the step's artifacts")
	case len(sc.GetArtifacts()) > 0 && sc.GetArtifacts()[p.Artifact] == "":
		add("artifact", "no artifact named %q", p.Artifact)
	}
	switch {
	case p.Dest == "":
		add("dest", "required: the absolute directory inside the root to extract into")
	case !strings.HasPrefix(p.Dest, "/"):
		add("dest", "%q is not absolute", p.Dest)
	case strings.ContainsRune(p.Dest, 0):
		add("dest", "contains a NUL byte")
	case hasDotDot(p.Dest):
		add("dest", "%q has a \"..\" element", p.Dest)
	}
	switch p.Format {
	case "", formatTar, formatTarGz, formatZip:
	default:
		add("format", "%q: want tar, tar.gz, zip or empty (detect)", p.Format)
	}
	if p.StripComponents < 0 {
		add("strip_components", "must not be negative")
	}
	for _, lim := range []struct {
		name  string
		v     *float64
		whole bool
	}{{"max_bytes", p.MaxBytes, true}, {"max_entries", p.MaxEntries, true}, {"max_ratio", p.MaxRatio, false}} {
		switch {
		case lim.v == nil:
		case *lim.v < 1 || *lim.v > maxLimit:
			add(lim.name, "%v: want a number from 1 to %d", *lim.v, int64(maxLimit))
		case lim.whole && *lim.v != float64(int64(*lim.v)):
			add(lim.name, "%v: want a whole number", *lim.v)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	p.Dest = path.Clean(p.Dest)
	return &p, nil
}

func hasDotDot(name string) bool {
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return true
		}
	}
	return false
}
