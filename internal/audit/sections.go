package audit

import (
	"google.golang.org/protobuf/proto"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Section is one part of an audit, owned by exactly one collector.
type Section struct {
	// Name is the section's dotted name, e.g. "hardware.block".
	Name string
	// Volatile sections are never diffed and never part of the content hash.
	Volatile bool
	// Get returns the section's message, nil when the audit lacks it.
	Get func(a *inventoryv1.Audit) proto.Message
}

// Sections lists every section of the schema in document order.
var Sections = []Section{
	{Name: "hardware.cpu", Get: func(a *inventoryv1.Audit) proto.Message { return nilIfNil(a.GetHardware().GetCpu()) }},
	{Name: "hardware.memory", Get: func(a *inventoryv1.Audit) proto.Message { return nilIfNil(a.GetHardware().GetMemory()) }},
	{Name: "hardware.block", Get: func(a *inventoryv1.Audit) proto.Message { return nilIfNil(a.GetHardware().GetBlock()) }},
	{Name: "hardware.network", Get: func(a *inventoryv1.Audit) proto.Message { return nilIfNil(a.GetHardware().GetNetwork()) }},
	{Name: "hardware.pci", Get: func(a *inventoryv1.Audit) proto.Message { return nilIfNil(a.GetHardware().GetPci()) }},
	{Name: "hardware.gpu", Get: func(a *inventoryv1.Audit) proto.Message { return nilIfNil(a.GetHardware().GetGpu()) }},
	{Name: "hardware.dmi", Get: func(a *inventoryv1.Audit) proto.Message { return nilIfNil(a.GetHardware().GetDmi()) }},
	{Name: "os", Get: func(a *inventoryv1.Audit) proto.Message { return nilIfNil(a.GetOs()) }},
	{Name: "packages", Get: func(a *inventoryv1.Audit) proto.Message { return nilIfNil(a.GetPackages()) }},
	{Name: "services", Get: func(a *inventoryv1.Audit) proto.Message { return nilIfNil(a.GetServices()) }},
	{Name: "files", Get: func(a *inventoryv1.Audit) proto.Message { return nilIfNil(a.GetFiles()) }},
	{Name: "kernel_modules", Get: func(a *inventoryv1.Audit) proto.Message { return nilIfNil(a.GetKernelModules()) }},
	{Name: "volatile", Volatile: true, Get: func(a *inventoryv1.Audit) proto.Message { return nilIfNil(a.GetVolatile()) }},
}

// SectionByName returns the named section.
func SectionByName(name string) (Section, bool) {
	for _, s := range Sections {
		if s.Name == name {
			return s, true
		}
	}
	return Section{}, false
}

// nilIfNil turns a typed nil message into an untyped nil interface.
func nilIfNil[M interface {
	proto.Message
	comparable
}](m M) proto.Message {
	var zero M
	if m == zero {
		return nil
	}
	return m
}

// Status returns the collector status recorded for section, nil when no
// collector of that section ran.
func Status(a *inventoryv1.Audit, section string) *inventoryv1.CollectorStatus {
	for _, s := range a.GetCollectors() {
		if s.GetSection() == section {
			return s
		}
	}
	return nil
}

// Comparable reports whether the section is complete in a: its collector
// ran and succeeded.
func Comparable(a *inventoryv1.Audit, section string) bool {
	s := Status(a, section)
	return s != nil && s.GetState() == inventoryv1.CollectorStatus_STATE_OK
}

// Failed returns the names of the collectors in a that did not succeed.
func Failed(a *inventoryv1.Audit) []string {
	var names []string
	for _, s := range a.GetCollectors() {
		if s.GetState() != inventoryv1.CollectorStatus_STATE_OK {
			names = append(names, s.GetName())
		}
	}
	return names
}
