package collector

import "sort"

// Registry returns every collector by name. The names are what
// `cairn-agent audit --collectors` accepts.
func Registry() map[string]Collector {
	return map[string]Collector{
		"cpu":            CPU{},
		"memory":         Memory{},
		"block":          Block{},
		"network":        Network{},
		"pci":            PCI{},
		"gpu":            GPU{},
		"dmi":            DMI{},
		"os":             OS{},
		"packages":       Packages{},
		"services":       Services{},
		"files":          Files{},
		"kernel_modules": KernelModules{},
		"volatile":       Volatile{},
	}
}

// Names returns the registered collector names, sorted.
func Names() []string {
	reg := Registry()
	names := make([]string, 0, len(reg))
	for n := range reg {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
