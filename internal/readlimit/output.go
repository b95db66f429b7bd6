package readlimit

import "bytes"

// Output collects what a command writes (as its exec.Cmd Stdout or
// Stderr), at most limit bytes. Past the limit Write fails with a
// *LimitError, which stops exec.Cmd's copying: the command finds its pipe
// closed and Wait returns an error; Err says why.
type Output struct {
	name  string
	limit int64
	buf   bytes.Buffer
	err   error
}

// NewOutput returns an Output of at most limit bytes; name names the
// output in the error ("output of rpm -qa").
func NewOutput(name string, limit int64) *Output {
	return &Output{name: name, limit: limit}
}

// Write appends p, or fails once the output would pass the limit.
func (o *Output) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	if int64(o.buf.Len())+int64(len(p)) > o.limit {
		o.err = &LimitError{Name: o.name, Limit: o.limit}
		return 0, o.err
	}
	return o.buf.Write(p)
}

// Bytes is what was written, up to the limit.
func (o *Output) Bytes() []byte { return o.buf.Bytes() }

// String is Bytes as a string.
func (o *Output) String() string { return o.buf.String() }

// Err is the *LimitError once the output passed its limit, else nil.
func (o *Output) Err() error { return o.err }
