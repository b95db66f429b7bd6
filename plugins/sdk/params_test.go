package sdk_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

type inner struct {
	Level int `json:"level"`
}

type decoded struct {
	Name    string            `json:"name"`
	Argv    []string          `json:"argv"`
	Env     map[string]string `json:"env"`
	Count   int               `json:"count"`
	Enabled bool              `json:"enabled"`
	Inner   inner             `json:"inner"`
	Skipped string            `json:"-"`
}

func TestDecodeParams(t *testing.T) {
	tests := []struct {
		name     string
		params   map[string]any
		want     decoded
		wantErrs []*sdk.FieldError
	}{
		{
			name:   "all kinds",
			params: map[string]any{"name": "x", "argv": []string{"a", "b"}, "env": map[string]string{"K": "v"}, "count": 3, "enabled": true, "inner": map[string]any{"level": 2}},
			want:   decoded{Name: "x", Argv: []string{"a", "b"}, Env: map[string]string{"K": "v"}, Count: 3, Enabled: true, Inner: inner{Level: 2}},
		},
		{
			name:   "missing keeps defaults",
			params: nil,
			want:   decoded{Name: "default"},
		},
		{
			name:     "unknown parameters, all reported",
			params:   map[string]any{"name": "x", "zeta": 1, "alpha": 2, "-": 3},
			want:     decoded{Name: "x"},
			wantErrs: []*sdk.FieldError{{Field: "-", Message: "unknown parameter"}, {Field: "alpha", Message: "unknown parameter"}, {Field: "zeta", Message: "unknown parameter"}},
		},
		{
			name:     "unknown nested parameter",
			params:   map[string]any{"inner": map[string]any{"depth": 1}},
			want:     decoded{Name: "default"},
			wantErrs: []*sdk.FieldError{{Field: "inner.depth", Message: "unknown parameter"}},
		},
		{
			name:     "wrong type",
			params:   map[string]any{"count": "three"},
			want:     decoded{Name: "default"},
			wantErrs: []*sdk.FieldError{{Field: "count", Message: "must be an integer, not string"}},
		},
		{
			name:     "wrong type nested",
			params:   map[string]any{"inner": map[string]any{"level": true}},
			want:     decoded{Name: "default"},
			wantErrs: []*sdk.FieldError{{Field: "inner.level", Message: "must be an integer, not bool"}},
		},
		{
			name:     "list of the wrong type",
			params:   map[string]any{"argv": "ls -l"},
			want:     decoded{Name: "default"},
			wantErrs: []*sdk.FieldError{{Field: "argv", Message: "must be a list, not string"}},
		},
		{
			name:     "fraction for an integer",
			params:   map[string]any{"count": 1.5},
			want:     decoded{Name: "default"},
			wantErrs: []*sdk.FieldError{{Field: "count", Message: "must be an integer, not number 1.5"}},
		},
		{
			// Every problem in one run, and every good parameter decoded.
			name:   "every problem reported",
			params: map[string]any{"name": "x", "count": "three", "argv": "ls -l", "zeta": 1, "enabled": true, "inner": map[string]any{"level": "high"}},
			want:   decoded{Name: "x", Enabled: true},
			wantErrs: []*sdk.FieldError{
				{Field: "argv", Message: "must be a list, not string"},
				{Field: "count", Message: "must be an integer, not string"},
				{Field: "inner.level", Message: "must be an integer, not string"},
				{Field: "zeta", Message: "unknown parameter"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := sdk.ParamsOf(tt.params)
			if err != nil {
				t.Fatal(err)
			}
			got := decoded{Name: "default"}
			errs := sdk.DecodeParams(&sdk.StepContext{Params: ps}, &got)
			if diff := cmp.Diff(tt.wantErrs, errs, protocmp.Transform()); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParamsOf(t *testing.T) {
	ps, err := sdk.ParamsOf(map[string]any{"n": 3, "list": []string{"a"}, "m": map[string]int{"x": 1}, "nil": nil})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"n": 3.0, "list": []any{"a"}, "m": map[string]any{"x": 1.0}, "nil": nil}
	if diff := cmp.Diff(want, sdk.Params(&sdk.StepContext{Params: ps})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := sdk.ParamsOf(map[string]any{"f": func() {}}); err == nil {
		t.Error("ParamsOf accepted a func")
	}
	if got := sdk.Params(&sdk.StepContext{}); got == nil || len(got) != 0 {
		t.Errorf("Params of no parameters = %v, want an empty map", got)
	}
}

func TestMissingParams(t *testing.T) {
	specs := []*sdk.ParamSpec{{Name: "a", Required: true}, {Name: "b"}, {Name: "c", Required: true}, {Name: "d", Required: true}}
	ps, err := sdk.ParamsOf(map[string]any{"a": "x", "c": nil})
	if err != nil {
		t.Fatal(err)
	}
	got := sdk.MissingParams(&sdk.StepContext{Params: ps}, specs)
	want := []*sdk.FieldError{{Field: "c", Message: "is required"}, {Field: "d", Message: "is required"}}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDeadline(t *testing.T) {
	if _, ok := sdk.Deadline(&sdk.StepContext{}); ok {
		t.Error("Deadline of a step without one reported one")
	}
	want := time.UnixMilli(1_700_000_000_123)
	got, ok := sdk.Deadline(&sdk.StepContext{DeadlineUnixMs: want.UnixMilli()})
	if !ok || !got.Equal(want) {
		t.Errorf("Deadline = %v, %v; want %v, true", got, ok, want)
	}
}

func TestErrorf(t *testing.T) {
	got := sdk.Errorf("env.PATH", "must not be empty, got %q", "")
	want := &sdk.FieldError{Field: "env.PATH", Message: `must not be empty, got ""`}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestFieldErrors(t *testing.T) {
	var errs sdk.FieldErrors
	errs.Add("path", "is required")
	errs.Add("path", "must be absolute") // the first problem of a field stands
	errs.Add("env", "must be an object")
	errs.Add("env.PATH", "not a valid name") // part of a field with a problem
	errs.Add("argv[0]", "is empty")
	errs.Add("argv", "is required")
	want := []*sdk.FieldError{{Field: "path", Message: "is required"}, {Field: "env", Message: "must be an object"}, {Field: "argv[0]", Message: "is empty"}, {Field: "argv", Message: "is required"}}
	if diff := cmp.Diff(want, []*sdk.FieldError(errs), protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
