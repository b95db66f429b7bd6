// Command garbage is a test "plugin" that writes junk on stdout instead of
// the go-plugin handshake line, then lingers.
package main

import (
	"fmt"
	"time"
)

func main() {
	fmt.Println("hello from a program that is not a plugin")
	time.Sleep(time.Minute)
}
