package builtin

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRegistry(t *testing.T) {
	want := []string{"archive", "dpkg", "exec", "file", "httpcheck", "manual", "systemd"}
	if diff := cmp.Diff(want, Names()); diff != "" {
		t.Errorf("built-ins (-want +got):\n%s", diff)
	}
	for name, newPlugin := range Registry() {
		d, err := newPlugin().Describe(t.Context())
		if err != nil {
			t.Errorf("%s: Describe: %v", name, err)
			continue
		}
		if d.GetName() != name {
			t.Errorf("registered as %q, Describe says %q", name, d.GetName())
		}
	}
}
