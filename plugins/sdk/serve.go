package sdk

import (
	"context"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginv1 "github.com/cairn-ops/cairn/proto/plugin/v1"
)

// Handshake is the one handshake between cairn-agent and every step
// plugin. It is not a security measure: it keeps a plugin binary run by
// hand from waiting for a host that is not there. Bump ProtocolVersion on
// an incompatible change to proto/plugin/v1.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "CAIRN_STEP_PLUGIN",
	MagicCookieValue: "6f1d3c0e9b2a47e8a5c4d7f09e3b1a26c8d5e4f3",
}

// PluginKey is the name the step plugin is served and dispensed under.
const PluginKey = "step"

// PluginSet returns the go-plugin plugin map a host passes to
// plugin.NewClient: one entry, PluginKey, dispensing a *Client.
func PluginSet() plugin.PluginSet {
	return plugin.PluginSet{PluginKey: &GRPCPlugin{}}
}

// Serve serves p as a step plugin over gRPC and returns when the host
// ends the plugin. It is the whole main of a plugin binary:
//
//	func main() { sdk.Serve(myplugin.New()) }
//
// go-plugin's own log lines go to stderr as JSON, which the host relays
// into its log. Run by hand (without the host's handshake) the binary
// prints a short message and exits with status 1.
func Serve(p Plugin) {
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "plugin",
		Output:     os.Stderr,
		JSONFormat: true,
		Level:      hclog.Info,
	})
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginKey: &GRPCPlugin{Impl: p, Logger: logger}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          logger,
	})
}

// GRPCPlugin is the go-plugin plugin.GRPCPlugin for step plugins. In a
// plugin process Impl is served; on the host side GRPCClient returns a
// *Client, and Impl is unused.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Plugin
	// Logger receives the stack of a recovered panic; nil discards it.
	Logger hclog.Logger
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers Impl on s.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	logger := p.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	pluginv1.RegisterStepPluginServer(s, &server{impl: p.Impl, logger: logger})
	return nil
}

// GRPCClient returns a *Client calling the plugin over conn.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return NewClient(conn), nil
}
