package collector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"sort"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Packages lists every installed package of the dpkg, rpm and apk
// package managers found under the root.
//
//   - dpkg: <root>/var/lib/dpkg/status (plus its updates/ journal) is
//     parsed directly. "Installed" means dpkg's ${db:Status-Status} is
//     "installed", whatever the selection (install, hold, deinstall):
//     exactly the packages `dpkg-query -W -f '${db:Status-Status}'` shows
//     as installed. config-files, half-installed, unpacked and
//     half-configured packages are left out.
//   - rpm: when <root>/var/lib/rpm or <root>/usr/lib/sysimage/rpm exists,
//     the rpm binary on PATH is asked (`rpm -qa --root ROOT`). Without the
//     binary the collector warns and reports no rpm packages; rpm is then
//     not listed among the managers. gpg-pubkey pseudo-packages are left out.
//   - apk: <root>/lib/apk/db/installed is parsed directly.
//
// When none of these databases exists under the root, Collect fails with
// an error wrapping ErrNoSource: a root without a package database is not
// a host without packages. A database that exists and lists nothing is an
// empty section.
//
// Keys are "<manager>/<name>/<arch>". When a manager has several versions
// of one name and architecture installed (rpm kernels), each of them is
// keyed "<manager>/<name>/<arch>/<version>" instead so keys stay unique.
type Packages struct{}

var _ Collector = Packages{}

// Section implements Collector.
func (Packages) Section() string { return "packages" }

// Collect implements Collector.
func (Packages) Collect(ctx context.Context, env Env, out *inventoryv1.Audit) error {
	if err := swCheckRoot(env); err != nil {
		return err
	}
	hasDpkg := swExists(env.Path(dpkgAdminDir + "/status"))
	hasRPM := swExists(env.Path(rpmDBDir)) || swExists(env.Path(rpmSysimageDBDir))
	hasAPK := swExists(env.Path(apkInstalled))
	if !hasDpkg && !hasRPM && !hasAPK {
		return noSource("no package database under %s (looked for dpkg, rpm, apk)", env.Path("/"))
	}
	sec := &inventoryv1.Packages{}
	add := func(manager, name, version, arch string) {
		sec.Packages = append(sec.Packages, &inventoryv1.Package{
			Key:          manager + "/" + name + "/" + arch,
			Manager:      manager,
			Name:         name,
			Version:      version,
			Architecture: arch,
		})
	}

	if hasDpkg {
		pkgs, err := readDpkgDatabase(env.Path(dpkgAdminDir))
		if err != nil {
			return fmt.Errorf("dpkg: %w", err)
		}
		for _, p := range pkgs {
			if p.Installed() {
				add("dpkg", p.Name, p.Version, p.Arch)
			}
		}
		sec.Managers = append(sec.Managers, "dpkg")
	}

	if hasRPM {
		if bin, err := exec.LookPath("rpm"); err != nil {
			env.warn("rpm database found but no rpm binary on PATH: rpm packages not listed")
		} else {
			root := env.Root
			if env.IsHost() {
				root = "/"
			}
			pkgs, err := queryRPM(ctx, bin, root)
			if err != nil {
				return fmt.Errorf("rpm: %w", err)
			}
			for _, p := range pkgs {
				add("rpm", p.Name, p.Version, p.Arch)
			}
			sec.Managers = append(sec.Managers, "rpm")
		}
	}

	if hasAPK {
		pkgs, err := readAPKInstalled(env.Path(apkInstalled))
		if err != nil {
			return fmt.Errorf("apk: %w", err)
		}
		for _, p := range pkgs {
			add("apk", p.Name, p.Version, p.Arch)
		}
		sec.Managers = append(sec.Managers, "apk")
	}

	disambiguatePackageKeys(sec.Packages)
	sort.Slice(sec.Packages, func(i, j int) bool { return sec.Packages[i].Key < sec.Packages[j].Key })
	sort.Strings(sec.Managers)
	out.Packages = sec
	return nil
}

// disambiguatePackageKeys appends the version to keys that occur more than
// once.
func disambiguatePackageKeys(pkgs []*inventoryv1.Package) {
	count := make(map[string]int, len(pkgs))
	for _, p := range pkgs {
		count[p.Key]++
	}
	for _, p := range pkgs {
		if count[p.Key] > 1 {
			p.Key += "/" + p.Version
		}
	}
}

// swExists reports whether path exists. An error other than "does not
// exist" (permission denied) counts as existing, so that the read that
// follows reports it rather than the collector skipping silently.
func swExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}
