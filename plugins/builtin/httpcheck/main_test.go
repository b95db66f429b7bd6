package httpcheck

import (
	"os"
	"testing"

	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
)

// TestMain serves the plugin when this test binary is started as one.
func TestMain(m *testing.M) {
	sdktest.ServeIfPlugin(New)
	os.Exit(m.Run())
}
