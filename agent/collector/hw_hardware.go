package collector

// The hardware collectors each fill one sub-message of the audit's
// Hardware section. They read sysfs, procfs, the udev database and the raw
// SMBIOS table under the root, through ghw where ghw reads what is needed
// and directly where it does not (DMI, meminfo, cpufreq, SMBIOS). Their
// Collect methods live in hw_*_linux.go; other systems get hw_other.go.

// CPU collects processor sockets: vendor, model, cores, threads and
// maximum frequency.
type CPU struct{}

// Memory collects the memory size and the installed DIMMs.
type Memory struct{}

// Block collects disks and their partitions.
type Block struct{}

// Network collects network interfaces.
type Network struct{}

// PCI collects PCI devices.
type PCI struct{}

// GPU collects graphics cards.
type GPU struct{}

// DMI collects the system, board, chassis and BIOS identity the firmware
// reports.
type DMI struct{}

var (
	_ Collector = CPU{}
	_ Collector = Memory{}
	_ Collector = Block{}
	_ Collector = Network{}
	_ Collector = PCI{}
	_ Collector = GPU{}
	_ Collector = DMI{}
)

func (CPU) Section() string     { return "hardware.cpu" }
func (Memory) Section() string  { return "hardware.memory" }
func (Block) Section() string   { return "hardware.block" }
func (Network) Section() string { return "hardware.network" }
func (PCI) Section() string     { return "hardware.pci" }
func (GPU) Section() string     { return "hardware.gpu" }
func (DMI) Section() string     { return "hardware.dmi" }
