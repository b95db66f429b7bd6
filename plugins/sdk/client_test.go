package sdk_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/plugins/sdk"
	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
)

// The plugin binaries the tests talk to, built once.
var (
	buildOnce         sync.Once
	motdBin, panicBin string
	buildErr          error
)

// binaries builds the example plugin and the panicky test plugin.
func binaries(t *testing.T) (motd, panicky string) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sdk-test-plugins-")
		if err != nil {
			buildErr = err
			return
		}
		// Removed by TestMain.
		binDir = dir
		motdBin, buildErr = build(dir, "github.com/cairn-ops/cairn/plugins/examples/cairn-plugin-motd")
		if buildErr != nil {
			return
		}
		panicBin, buildErr = build(dir, "./testdata/panicky")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return motdBin, panicBin
}

func stepContext(t *testing.T, root string, params map[string]any) *sdk.StepContext {
	t.Helper()
	ps, err := sdk.ParamsOf(params)
	if err != nil {
		t.Fatal(err)
	}
	return &sdk.StepContext{RootDir: root, Params: ps, Step: "test"}
}

func TestClientApplyStreamsEvents(t *testing.T) {
	motd, _ := binaries(t)
	c := sdktest.Start(t, motd)
	root := t.TempDir()
	rec := &sdktest.Recorder{}
	res, err := c.Apply(t.Context(), stepContext(t, root, map[string]any{"message": "hello"}), rec)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if !res.GetChanged() {
		t.Error("Apply reported changed=false on an empty root")
	}
	wantLogs := []sdktest.LogLine{{Level: sdk.LevelInfo, Message: "writing /etc/motd (6 bytes)"}}
	if diff := cmp.Diff(wantLogs, rec.Logs); diff != "" {
		t.Errorf("log lines (-want +got):\n%s", diff)
	}
	wantProgress := []sdktest.ProgressEvent{{Fraction: 0.5, Message: "writing"}, {Fraction: 1, Message: "written"}}
	if diff := cmp.Diff(wantProgress, rec.Updates); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
	data, err := os.ReadFile(filepath.Join(root, "etc/motd"))
	if err != nil || string(data) != "hello\n" {
		t.Errorf("etc/motd = %q, %v; want \"hello\\n\"", data, err)
	}
	// A nil Reporter is allowed.
	if _, err := c.Apply(t.Context(), stepContext(t, root, map[string]any{"message": "bye"}), nil); err != nil {
		t.Errorf("Apply with a nil Reporter: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	motd, panicky := binaries(t)
	m := sdktest.Start(t, motd)
	p := sdktest.Start(t, panicky)
	root := t.TempDir()
	tests := []struct {
		name    string
		call    func(ctx context.Context) error
		wantMsg string
		wantIs  error // nil: none of the sentinels
	}{
		{
			name: "apply error keeps the plugin's message",
			call: func(ctx context.Context) error {
				_, err := m.Apply(ctx, stepContext(t, root, map[string]any{"path": "etc/motd"}), nil)
				return err
			},
			wantMsg: `invalid parameters: message: is required; path: must be absolute, not "etc/motd"`,
		},
		{
			name: "apply error from the panicky plugin",
			call: func(ctx context.Context) error {
				_, err := p.Apply(ctx, stepContext(t, root, map[string]any{"how": "fail"}), nil)
				return err
			},
			wantMsg: "disk on fire: /dev/sda1",
		},
		{
			name: "panic in apply",
			call: func(ctx context.Context) error {
				_, err := p.Apply(ctx, stepContext(t, root, map[string]any{"how": "panic"}), nil)
				return err
			},
			wantMsg: "plugin panicked: apply: boom",
			wantIs:  sdk.ErrPanic,
		},
		{
			name: "panic in validate",
			call: func(ctx context.Context) error {
				_, err := p.Validate(ctx, stepContext(t, root, nil))
				return err
			},
			wantMsg: "plugin panicked: validate: validate exploded",
			wantIs:  sdk.ErrPanic,
		},
		{
			name: "step deadline passed before the call",
			call: func(ctx context.Context) error {
				sc := stepContext(t, root, map[string]any{"message": "late"})
				sc.DeadlineUnixMs = time.Now().Add(-time.Minute).UnixMilli()
				_, err := m.Apply(ctx, sc, nil)
				return err
			},
			wantMsg: `step "test": context deadline exceeded`,
			wantIs:  context.DeadlineExceeded,
		},
		{
			name: "step deadline passes during the call",
			call: func(ctx context.Context) error {
				sc := stepContext(t, root, map[string]any{"how": "hang"})
				sc.DeadlineUnixMs = time.Now().Add(200 * time.Millisecond).UnixMilli()
				_, err := p.Apply(ctx, sc, nil)
				return err
			},
			wantMsg: "context deadline exceeded",
			wantIs:  context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			err := tt.call(ctx)
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tt.wantMsg, err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
			for _, sentinel := range []error{sdk.ErrPanic, sdk.ErrUnavailable, context.DeadlineExceeded, context.Canceled} {
				if got, want := errors.Is(err, sentinel), sentinel == tt.wantIs; got != want {
					t.Errorf("errors.Is(err, %v) = %v, want %v", sentinel, got, want)
				}
			}
		})
	}
	// The panics were recovered: the plugin process still serves.
	d, err := p.Describe(t.Context())
	if err != nil || d.GetName() != "panicky" {
		t.Errorf("Describe after the panics = %v, %v; want the panicky plugin", d, err)
	}
}

func TestClientPluginCrash(t *testing.T) {
	_, panicky := binaries(t)
	p := sdktest.Start(t, panicky)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := p.Apply(ctx, stepContext(t, t.TempDir(), map[string]any{"how": "crash"}), nil)
	if err == nil {
		t.Fatal("Apply of a crashing plugin succeeded")
	}
	if !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("Apply of a crashing plugin: %v; want an error wrapping ErrUnavailable", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Apply of a crashing plugin took %v", elapsed)
	}
}

func TestClientCancel(t *testing.T) {
	_, panicky := binaries(t)
	p := sdktest.Start(t, panicky)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err := p.Apply(ctx, stepContext(t, t.TempDir(), map[string]any{"how": "hang"}), nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Apply cancelled by the host: %v; want an error wrapping context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "canceled") {
		t.Errorf("message %q does not say it was cancelled", err)
	}
}
