//go:build !linux

package inroot

import (
	"errors"
	"io/fs"
	"os"
)

var errUnsupported = errors.New("resolving paths inside a root needs Linux's openat2")

// Open is not supported off Linux.
func Open(root, name string, flags int) (*os.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: errUnsupported}
}

// Stat is not supported off Linux.
func Stat(root, name string) (fs.FileInfo, error) {
	return nil, &fs.PathError{Op: "stat", Path: name, Err: errUnsupported}
}

// Dir is not supported off Linux.
func Dir(root, name string) (*os.File, string, error) {
	return nil, "", &fs.PathError{Op: "open", Path: name, Err: errUnsupported}
}
