//go:build !linux

package collector

// hostMachine is empty off Linux: the architecture then comes from the
// root's files as for a non-host root.
func swHostMachine() string { return "" }
