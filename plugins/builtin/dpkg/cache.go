package dpkg

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-ops/cairn/internal/atomicfile"
	"github.com/cairn-ops/cairn/internal/readlimit"
)

// cacheName is the file name a .deb is kept under in the cache
// directory: PACKAGE_VERSION_ARCH.deb, as Debian names them, with an
// epoch's colon escaped as apt does ("1:2.0" → "1%3a2.0").
func cacheName(info debInfo) string {
	return info.Package + "_" + strings.ReplaceAll(info.Version, ":", "%3a") + "_" + info.Arch + ".deb"
}

// cacheDeb copies the .deb at src into dir under cacheName, so that a
// later rollback can reinstall this version. It returns the cached path;
// a file already there is kept.
func cacheDeb(dir, src string, info debInfo) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cache .deb: %w", err)
	}
	dst := filepath.Join(dir, cacheName(info))
	if same, err := sameFile(src, dst); err != nil {
		return "", fmt.Errorf("cache .deb: %w", err)
	} else if same {
		return dst, nil
	}
	in, err := readlimit.Open(src)
	if err != nil {
		return "", fmt.Errorf("cache .deb: %w", err)
	}
	defer in.Close()
	err = atomicfile.WriteFrom(dst, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	}, 0o644)
	if err != nil {
		return "", fmt.Errorf("cache .deb %s: %w", dst, err)
	}
	return dst, nil
}

// sameFile reports whether dst exists and is src itself.
func sameFile(src, dst string) (bool, error) {
	di, err := os.Stat(dst)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	si, err := os.Stat(src)
	if err != nil {
		return false, err
	}
	return os.SameFile(si, di), nil
}

// findCached returns the cached .deb of package name at version (arch
// "" for any architecture), or "" when the cache has none. A cached file
// whose control data does not say that package and version is ignored.
func findCached(ctx context.Context, dir, name, version, arch string) (string, error) {
	if dir == "" || version == "" {
		return "", nil
	}
	var candidates []string
	if arch != "" {
		candidates = []string{filepath.Join(dir, cacheName(debInfo{Package: name, Version: version, Arch: arch}))}
	} else {
		prefix := strings.TrimSuffix(cacheName(debInfo{Package: name, Version: version}), ".deb")
		matches, err := filepath.Glob(filepath.Join(dir, escapeGlob(prefix)+"*.deb"))
		if err != nil {
			return "", fmt.Errorf("look up cached .deb: %w", err)
		}
		candidates = matches
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err != nil {
			continue
		}
		info, err := readDeb(ctx, c)
		if err != nil {
			continue
		}
		if info.Package == name && info.Version == version {
			return c, nil
		}
	}
	return "", nil
}

// escapeGlob escapes filepath.Match's metacharacters in s.
func escapeGlob(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}
