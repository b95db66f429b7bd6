package collector

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/cairn-ops/cairn/internal/readlimit"
)

// rpmDBDir is where rpm keeps its database on the audited host.
const rpmDBDir = "/var/lib/rpm"

// rpmSysimageDBDir is where rpm 4.16 and later keep it (Fedora 36, SUSE).
const rpmSysimageDBDir = "/usr/lib/sysimage/rpm"

// rpmQueryFormat is the --qf the rpm binary is asked for: one package a
// line, tab-separated.
const rpmQueryFormat = `%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n`

// rpmPackage is one installed rpm package.
type rpmPackage struct {
	Name, Version, Arch string
}

// queryRPM asks the rpm binary for the packages installed under root. rpm's
// database formats (bdb, ndb, sqlite) are not parsed directly.
func queryRPM(ctx context.Context, rpmBin, root string) ([]rpmPackage, error) {
	cmd := exec.CommandContext(ctx, rpmBin, "-qa", "--root", root, "--nodigest", "--nosignature", "--qf", rpmQueryFormat)
	stdout := readlimit.NewOutput("output of rpm -qa", maxToolOutputBytes)
	stderr := readlimit.NewOutput("errors of rpm -qa", maxToolErrBytes)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return nil, toolError("run rpm -qa --root "+root, err, stdout, stderr)
	}
	return parseRPMOutput(stdout.Bytes())
}

// parseRPMOutput parses rpmQueryFormat output. The version is
// "EPOCH:VERSION-RELEASE", without "EPOCH:" when rpm prints "(none)".
func parseRPMOutput(out []byte) ([]rpmPackage, error) {
	var pkgs []rpmPackage
	sc := readlimit.NewLines(bytes.NewReader(out), "rpm -qa output", maxLineBytes)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			return nil, fmt.Errorf("parse rpm output: line %d: want 5 tab-separated fields, got %d: %w", lineNo, len(f), ErrMalformedDatabase)
		}
		if f[0] == "gpg-pubkey" {
			continue // imported signing keys, not software
		}
		v := f[2] + "-" + f[3]
		if f[1] != "(none)" && f[1] != "" {
			v = f[1] + ":" + v
		}
		arch := f[4]
		if arch == "(none)" {
			arch = ""
		}
		pkgs = append(pkgs, rpmPackage{Name: f[0], Version: v, Arch: arch})
	}
	return pkgs, sc.Err()
}
