// Command cairnctl is the operator's command line for cairn-controller.
// Its commands live in controller/ctl.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cairn-ops/cairn/controller/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal cancels ctx. A command blocked where ctx does not
	// reach (opening a named pipe nobody writes to) would not notice: the
	// next signal ends the process the default way.
	context.AfterFunc(ctx, stop)
	code := ctl.Execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
