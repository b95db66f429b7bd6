// Package pluginv1 is the generated Go code for plugin.proto: the protocol
// between cairn-agent and step-plugin processes. Plugin authors use
// plugins/sdk instead. Regenerate with `make proto`.
package pluginv1
