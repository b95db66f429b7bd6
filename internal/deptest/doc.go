// Package deptest holds the test that keeps Cairn's layers apart, after
// tailscale's tstest/deptest. It lists every package of the module with
// 'go list' and fails when a package depends, directly or through
// others, on one its layer may not use:
//
//   - agent/ never depends on controller/, nor controller/ on agent/;
//   - internal/ depends on nothing of this module but internal/ and proto/;
//   - plugins/sdk/ depends on nothing of this module but plugins/sdk/ and
//     proto/: plugin authors outside the module import it;
//   - cairnctl (controller/cmd/cairnctl) does not contain the agent.
//
// The rules are about what the binaries are built from: tests may cross
// them (a controller test takes a real audit with agent/inventory).
package deptest
