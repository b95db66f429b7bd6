package compare

import (
	"slices"
	"strconv"
	"strings"

	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/bytesize"
	"github.com/cairn-ops/cairn/internal/diff"
	"github.com/cairn-ops/cairn/internal/manifest"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// fact is how one hardware fact is read from an audit. A numeric fact
// has count; a model fact has models.
type fact struct {
	section string
	size    bool
	count   func(a *inventoryv1.Audit) uint64
	models  func(a *inventoryv1.Audit) []string
	// pci returns the PCI addresses of the fact's devices, whose changes
	// in hardware.pci the fact also covers.
	pci func(a *inventoryv1.Audit) []string
}

// facts are the hardware facts manifest.HardwareFact can name.
var facts = map[string]fact{
	"memory.total_bytes": {
		section: "hardware.memory",
		size:    true,
		count:   func(a *inventoryv1.Audit) uint64 { return a.GetHardware().GetMemory().GetTotalBytes() },
	},
	"cpu.count": {section: "hardware.cpu", count: cpuCount},
	"disk.count": {
		section: "hardware.block",
		count:   func(a *inventoryv1.Audit) uint64 { return uint64(len(a.GetHardware().GetBlock().GetDisks())) },
	},
	"disk.model": {section: "hardware.block", models: diskModels},
	"nic.model":  {section: "hardware.network", models: nicModels, pci: nicAddresses},
	"gpu.model":  {section: "hardware.gpu", models: gpuModels, pci: gpuAddresses},
}

// cpuCount is the logical CPUs: threads, else cores, else sockets.
func cpuCount(a *inventoryv1.Audit) uint64 {
	c := a.GetHardware().GetCpu()
	for _, n := range []uint32{c.GetThreads(), c.GetCores(), c.GetSockets()} {
		if n > 0 {
			return uint64(n)
		}
	}
	return uint64(len(c.GetProcessors()))
}

func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

func diskModels(a *inventoryv1.Audit) []string {
	var out []string
	for _, d := range a.GetHardware().GetBlock().GetDisks() {
		if m := joinNonEmpty(d.GetVendor(), d.GetModel()); m != "" {
			out = append(out, m)
		}
	}
	return out
}

func pciDevice(a *inventoryv1.Audit, addr string) *inventoryv1.PCIDevice {
	for _, d := range a.GetHardware().GetPci().GetDevices() {
		if addr != "" && (d.GetKey() == addr || d.GetAddress() == addr) {
			return d
		}
	}
	return nil
}

// nicModels are the NICs' PCI vendor and product names, or their
// drivers when the PCI names are unknown.
func nicModels(a *inventoryv1.Audit) []string {
	var out []string
	for _, n := range a.GetHardware().GetNetwork().GetNics() {
		d := pciDevice(a, n.GetPciAddress())
		m := joinNonEmpty(d.GetVendorName(), d.GetProductName())
		if m == "" {
			m = n.GetDriver()
		} else if n.GetDriver() != "" {
			m += " (" + n.GetDriver() + ")"
		}
		if m != "" {
			out = append(out, m)
		}
	}
	return out
}

func nicAddresses(a *inventoryv1.Audit) []string {
	var out []string
	for _, n := range a.GetHardware().GetNetwork().GetNics() {
		if n.GetPciAddress() != "" {
			out = append(out, n.GetPciAddress())
		}
	}
	return out
}

func gpuModels(a *inventoryv1.Audit) []string {
	var out []string
	for _, c := range a.GetHardware().GetGpu().GetCards() {
		m := joinNonEmpty(c.GetVendor(), c.GetProduct())
		if d := pciDevice(a, c.GetAddress()); m == "" && d != nil {
			m = joinNonEmpty(d.GetVendorName(), d.GetProductName())
		}
		if m != "" {
			out = append(out, m)
		}
	}
	return out
}

func gpuAddresses(a *inventoryv1.Audit) []string {
	var out []string
	for _, c := range a.GetHardware().GetGpu().GetCards() {
		out = append(out, c.GetKey(), c.GetAddress())
	}
	return out
}

// CheckFact evaluates hardware fact f on audit a. found says what the
// audit shows ("24 GiB", "Samsung SSD 980, ModelA"), or why the fact
// cannot be checked (then holds is false).
func CheckFact(a *inventoryv1.Audit, f manifest.HardwareFact) (holds bool, found string) {
	spec, ok := facts[f.Fact]
	if !ok {
		return false, "unknown hardware fact " + f.Fact
	}
	if !audit.Comparable(a, spec.section) {
		st := audit.Status(a, spec.section)
		if st == nil {
			return false, spec.section + " not collected"
		}
		why := spec.section + " collector " + audit.StateName(st.GetState())
		if st.GetMessage() != "" {
			why += ": " + st.GetMessage()
		}
		return false, why
	}
	if spec.models != nil {
		models := spec.models(a)
		found = strings.Join(models, ", ")
		if found == "" {
			found = "none"
		}
		want := strings.ToLower(strings.TrimSpace(f.Value))
		present := want != "" && slices.ContainsFunc(models, func(m string) bool {
			return strings.Contains(strings.ToLower(m), want)
		})
		switch f.Op {
		case manifest.StatePresent:
			return present, found
		case manifest.StateAbsent:
			return !present, found
		}
		return false, found + " (op " + f.Op + " does not apply to a model)"
	}

	got := spec.count(a)
	var want uint64
	var err error
	if spec.size {
		found = bytesize.Format(got)
		want, err = bytesize.Parse(f.Value)
	} else {
		found = strconv.FormatUint(got, 10)
		want, err = strconv.ParseUint(strings.TrimSpace(f.Value), 10, 64)
	}
	if err != nil {
		return false, found + " (the expected value " + strconv.Quote(f.Value) + " is not a number)"
	}
	switch f.Op {
	case ">=":
		return got >= want, found
	case "<=":
		return got <= want, found
	case "==", "=":
		return got == want, found
	}
	return false, found + " (unknown op " + f.Op + ")"
}

// factWords is a hardware fact in words: "memory.total_bytes >= 16GiB",
// "disk.model present Samsung SSD 980".
func factWords(f manifest.HardwareFact) string {
	return joinNonEmpty(f.Fact, f.Op, f.Value)
}

func (c checker) hardware(f manifest.HardwareFact) expectation {
	spec := facts[f.Fact]
	words := factWords(f)
	it := newItem(spec.section, f.Fact, "hardware "+words, "")
	var addrs []string
	if spec.pci != nil {
		addrs = append(spec.pci(c.before), spec.pci(c.after)...)
	}
	e := expectation{concerns: func(section string, ch diff.Change) bool {
		if spec.section != "" && section == spec.section {
			return true
		}
		return section == "hardware.pci" && slices.Contains(addrs, ch.Key)
	}}
	if spec.section == "" {
		it.Section = "hardware"
	} else if why := c.unavailable(spec.section); why != "" {
		e.item = it.with(Missing, "cannot check "+f.Fact+": "+why)
		return e
	}
	holds, found := CheckFact(c.after, f)
	if holds {
		e.item = it.with(Expected, f.Fact+" is "+found+" ("+strings.TrimPrefix(words, f.Fact+" ")+")")
	} else {
		e.item = it.with(Missing, f.Fact+" is "+found+", expected "+strings.TrimPrefix(words, f.Fact+" "))
	}
	return e
}

// MatchSignature reports whether audit a matches a known error's
// signature: every package is installed (at least one installed version
// meeting its version constraint, when it has one) and every hardware
// fact holds. A nil or empty signature matches nothing. found says, per
// condition, what the audit shows.
func MatchSignature(a *inventoryv1.Audit, sig *manifest.Signature) (match bool, found []string) {
	if sig == nil || (len(sig.Packages) == 0 && len(sig.Hardware) == 0) {
		return false, nil
	}
	match = true
	for _, p := range sig.Packages {
		var vc *manifest.VersionConstraint
		if p.Version != "" {
			c, err := manifest.ParseVersionConstraint(p.Version)
			if err != nil {
				match = false
				found = append(found, "package "+p.Name+": "+err.Error())
				continue
			}
			vc = &c
		}
		var versions []string
		ok := false
		for _, q := range a.GetPackages().GetPackages() {
			if q.GetName() != p.Name {
				continue
			}
			versions = append(versions, q.GetVersion())
			if vc == nil || vc.Matches(q.GetVersion()) {
				ok = true
			}
		}
		if len(versions) == 0 {
			found = append(found, "package "+p.Name+" not installed")
		} else {
			found = append(found, "package "+p.Name+" "+strings.Join(versions, ", ")+" installed")
		}
		match = match && ok
	}
	for _, h := range sig.Hardware {
		ok, what := CheckFact(a, h)
		found = append(found, h.Fact+" is "+what)
		match = match && ok
	}
	return match, found
}
