package ctl

import "errors"

// ErrNoCA means no CA certificate was configured, so the controller's TLS
// certificate cannot be verified.
var ErrNoCA = errors.New("no CA: pass --ca or set CAIRN_CA to the controller's ca.pem")

// ErrBadPair means a k=v argument is malformed.
var ErrBadPair = errors.New("want key=value")
