package collector

import (
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jaypipes/pcidb"

	"github.com/cairn-ops/cairn/internal/readlimit"
)

// hwPCIIDsPaths are where distributions install the pci.ids database, in the
// order pcidb searches them.
var hwPCIIDsPaths = []string{
	"/usr/share/hwdata/pci.ids",
	"/usr/share/misc/pci.ids",
	"/usr/share/hwdata/pci.ids.gz",
	"/usr/share/misc/pci.ids.gz",
}

// hwPCIWanted is the set of IDs a host's PCI devices use: only these are
// kept from pci.ids.
type hwPCIWanted struct {
	vendors  map[string]bool // vendor and subsystem vendor IDs
	products map[string]bool // vendor ID + product ID
	classes  map[string]bool // class IDs
}

// hwLoadPCIDB loads the names the root's PCI devices need from the pci.ids
// database found under env's root. It reports false, with an empty
// database, when there is none, so that ghw reports IDs without names.
//
// ghw must always be handed a database: left to itself it loads pci.ids
// from the running host rather than the root, and pcidb parses the whole
// 1.3 MB file into maps (about 100 ms per load, and pci and gpu each need
// one). Reading the file once and keeping only the vendors, products and
// classes present on the host takes a few milliseconds. pcidb's network
// fetch is never involved.
func hwLoadPCIDB(env Env) (*pcidb.PCIDB, bool) {
	empty := &pcidb.PCIDB{
		Classes:  map[string]*pcidb.Class{},
		Vendors:  map[string]*pcidb.Vendor{},
		Products: map[string]*pcidb.Product{},
	}
	for _, p := range hwPCIIDsPaths {
		path := env.Path(p)
		f, err := openHostFile(path)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				env.warnf("pci.ids: %v", err)
			}
			continue
		}
		db, err := hwParsePCIIDs(readlimit.NewReader(f, path, maxPCIIDsBytes), strings.HasSuffix(p, ".gz"), hwWantedPCIIDs(env))
		f.Close()
		if err != nil {
			env.warnf("load pci.ids %s: %v", path, err)
			return empty, false
		}
		return db, true
	}
	return empty, false
}

// hwWantedPCIIDs reads the IDs of the PCI devices under the root.
func hwWantedPCIIDs(env Env) hwPCIWanted {
	w := hwPCIWanted{vendors: map[string]bool{}, products: map[string]bool{}, classes: map[string]bool{}}
	dir := env.Path("/sys/bus/pci/devices")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return w
	}
	id := func(dev, name string) string {
		b, err := readlimit.File(filepath.Join(dir, dev, name), "", maxAttrBytes)
		if err != nil {
			return ""
		}
		return strings.ToLower(strings.TrimPrefix(strings.TrimSpace(string(b)), "0x"))
	}
	for _, e := range entries {
		vendor, product := id(e.Name(), "vendor"), id(e.Name(), "device")
		w.vendors[vendor] = true
		w.vendors[id(e.Name(), "subsystem_vendor")] = true
		w.products[vendor+product] = true
		if class := id(e.Name(), "class"); len(class) >= 2 {
			w.classes[class[:2]] = true
		}
	}
	return w
}

// hwParsePCIIDs reads pci.ids in one pass, keeping the vendors, products
// (with their subsystems) and classes (with their subclasses and
// programming interfaces) that want names. Unknown or malformed lines are
// skipped, as pci.ids' own tools do.
func hwParsePCIIDs(r io.Reader, gz bool, want hwPCIWanted) (*pcidb.PCIDB, error) {
	if gz {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		// Bound what it inflates to as well: a small file can hold a lot.
		r = readlimit.NewReader(zr, "pci.ids (uncompressed)", maxPCIIDsBytes)
	}
	db := &pcidb.PCIDB{
		Classes:  map[string]*pcidb.Class{},
		Vendors:  map[string]*pcidb.Vendor{},
		Products: map[string]*pcidb.Product{},
	}
	var (
		vendor   *pcidb.Vendor
		product  *pcidb.Product
		class    *pcidb.Class
		subclass *pcidb.Subclass
		inClass  bool
	)
	sc := readlimit.NewLines(r, "pci.ids", maxLineBytes)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		depth := 0
		for depth < len(line) && line[depth] == '\t' {
			depth++
		}
		id, name, ok := hwPCIIDsEntry(line[depth:])
		if !ok {
			continue
		}
		switch {
		case depth == 0 && strings.HasPrefix(line, "C "):
			inClass, vendor, product, subclass = true, nil, nil, nil
			class = nil
			if len(line) > 4 {
				if cid := strings.ToLower(line[2:4]); want.classes[cid] {
					class = &pcidb.Class{ID: cid, Name: strings.TrimSpace(line[4:])}
					db.Classes[cid] = class
				}
			}
		case depth == 0:
			inClass, class, subclass, product = false, nil, nil, nil
			vendor = nil
			if want.vendors[id] {
				vendor = &pcidb.Vendor{ID: id, Name: name}
				db.Vendors[id] = vendor
			}
		case depth == 1 && inClass:
			subclass = nil
			if class != nil {
				subclass = &pcidb.Subclass{ID: id, Name: name}
				class.Subclasses = append(class.Subclasses, subclass)
			}
		case depth == 1:
			product = nil
			if vendor != nil && want.products[vendor.ID+id] {
				product = &pcidb.Product{VendorID: vendor.ID, ID: id, Name: name}
				vendor.Products = append(vendor.Products, product)
				db.Products[vendor.ID+id] = product
			}
		case depth == 2 && inClass:
			if subclass != nil {
				subclass.ProgrammingInterfaces = append(subclass.ProgrammingInterfaces,
					&pcidb.ProgrammingInterface{ID: id, Name: name})
			}
		case depth == 2:
			// "subvendor subdevice  name"
			if product != nil {
				sub := strings.Fields(id + " " + name)
				if len(sub) >= 3 {
					product.Subsystems = append(product.Subsystems, &pcidb.Product{
						VendorID: sub[0], ID: sub[1], Name: strings.Join(sub[2:], " "),
					})
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return db, nil
}

// hwPCIIDsEntry splits "id  name" (the ID, two spaces, the name).
func hwPCIIDsEntry(s string) (id, name string, ok bool) {
	i := strings.IndexByte(s, ' ')
	if i <= 0 {
		return "", "", false
	}
	return strings.ToLower(s[:i]), strings.TrimSpace(s[i+1:]), true
}
