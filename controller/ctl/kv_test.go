package ctl

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePairs(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		allowEmpty bool
		want       map[string]string
		wantErr    bool
	}{
		{name: "none", args: nil, want: nil},
		{name: "one", args: []string{"env=prod"}, want: map[string]string{"env": "prod"}},
		{name: "several", args: []string{"env=prod", "role=web"}, want: map[string]string{"env": "prod", "role": "web"}},
		{name: "value with equals", args: []string{"cmd=a=b"}, want: map[string]string{"cmd": "a=b"}},
		{name: "empty value removes", args: []string{"tier="}, allowEmpty: true, want: map[string]string{"tier": ""}},
		{name: "empty value refused", args: []string{"tier="}, wantErr: true},
		{name: "no equals", args: []string{"env"}, wantErr: true},
		{name: "no key", args: []string{"=prod"}, wantErr: true},
		{name: "space in key", args: []string{"my env=prod"}, wantErr: true},
		{name: "duplicate key", args: []string{"env=prod", "env=dev"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePairs("--labels", tt.args, tt.allowEmpty)
			if tt.wantErr {
				code, _ := exitStatus(err, true, "", nil)
				if err == nil || code != ExitUsage {
					t.Fatalf("got %v (exit %d), want a usage error", err, code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := parsePairs("--labels", []string{"x"}, false); !errors.Is(err, ErrBadPair) {
		t.Errorf("error %v does not wrap ErrBadPair", err)
	}
}

func TestSplitPairs(t *testing.T) {
	got := splitPairs([]string{"env=prod,role=web", " tier=front ", ""})
	want := []string{"env=prod", "role=web", "tier=front"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
