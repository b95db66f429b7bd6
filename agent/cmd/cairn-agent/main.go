// Command cairn-agent audits a host's hardware and software and compares
// audits. See `cairn-agent --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cairn-ops/cairn/agent/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
