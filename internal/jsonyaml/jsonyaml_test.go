package jsonyaml

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"keys keep their order", `{"b":1,"a":"x"}`, "b: 1\na: x\n"},
		{"strings that look like numbers stay strings", `{"version":"1.0","n":"12"}`, "version: \"1.0\"\nn: \"12\"\n"},
		{"nested lists in block style", `{"nodes":[{"id":"n-1"},{"id":"n-2"}]}`, "nodes:\n  - id: n-1\n  - id: n-2\n"},
		{"empty object", `{}`, "{}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, []byte(tt.in)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, buf.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteRejectsInvalid(t *testing.T) {
	if err := Write(&bytes.Buffer{}, []byte(`{"a":`)); err == nil {
		t.Fatal("want an error for truncated JSON")
	}
}
