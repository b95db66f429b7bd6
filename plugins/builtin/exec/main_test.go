package exec

import (
	"os"
	"testing"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// TestMain serves the plugin when go-plugin starts this test binary as a
// plugin process (the binary conformance test does), so the tests cross
// the real process boundary without building a separate binary.
func TestMain(m *testing.M) {
	if os.Getenv(sdk.Handshake.MagicCookieKey) == sdk.Handshake.MagicCookieValue {
		sdk.Serve(New())
		os.Exit(0)
	}
	if pidFile := os.Getenv(envPluginStandIn); pidFile != "" {
		standIn(pidFile)
	}
	os.Exit(m.Run())
}

// self is the path of this test binary, to start as a plugin.
func self(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
