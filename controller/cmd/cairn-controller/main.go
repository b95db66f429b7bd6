// Command cairn-controller is Cairn's central server. See
// `cairn-controller --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cairn-ops/cairn/controller/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := daemon.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
