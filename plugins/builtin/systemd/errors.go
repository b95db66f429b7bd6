package systemd

import "errors"

// Errors a step can fail with; check with errors.Is.
var (
	// ErrNoSystemd: the action needs a running systemd (start, stop,
	// restart, reload, wait-active) and none runs for the step's root.
	ErrNoSystemd = errors.New("no systemd is running on this host (systemd is not PID 1); enable/disable/mask work offline")
	// ErrUnitNotFound: no unit file of that name under the root.
	ErrUnitNotFound = errors.New("unit not found")
	// ErrNotActive: wait-active gave up before the unit became active.
	ErrNotActive = errors.New("unit did not become active")
)
