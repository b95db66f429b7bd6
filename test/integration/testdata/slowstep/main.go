// Command slowstep is the kill -9 test's slow, non-idempotent program:
// it appends one line to a marker file (fsynced), then sleeps. The
// marker's line count is how many times it ran.
//
//	slowstep MARKER SECONDS
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: slowstep MARKER SECONDS")
		os.Exit(2)
	}
	secs, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	f, err := os.OpenFile(os.Args[1], os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(f, "ran pid %d\n", os.Getpid())
	if err := f.Sync(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	f.Close()
	time.Sleep(time.Duration(secs) * time.Second)
}
