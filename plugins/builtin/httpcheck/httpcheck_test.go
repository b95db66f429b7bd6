package httpcheck

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/plugins/sdk"
	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
)

// server serves /ok ("status: ok"), /slow (after 300ms), /missing (404)
// and /flaky (503 twice, then 200).
func server(t *testing.T) *httptest.Server {
	t.Helper()
	var flaky atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "status: ok, version 1.4.2")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(300 * time.Millisecond):
		case <-r.Context().Done():
		}
		fmt.Fprint(w, "late")
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such page", http.StatusNotFound)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Repeat("a", maxBody)+"needle")
	})
	mux.HandleFunc("/flaky", func(w http.ResponseWriter, r *http.Request) {
		if flaky.Add(1) <= 2 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ready")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func stepContext(t *testing.T, params map[string]any) *sdk.StepContext {
	t.Helper()
	p, err := sdk.ParamsOf(params)
	if err != nil {
		t.Fatal(err)
	}
	return &sdk.StepContext{RootDir: t.TempDir(), Params: p, Step: "test"}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		want   []*sdk.FieldError
	}{
		{"ok", map[string]any{"url": "https://example.test/health", "expect_status": 204, "body_regex": "^ok", "max_latency": "200ms", "retries": 3, "interval": "0s", "timeout": "1s"}, nil},
		{"no url", map[string]any{}, []*sdk.FieldError{{Field: "url", Message: "is required"}}},
		{"not http", map[string]any{"url": "file:///etc/passwd"}, []*sdk.FieldError{{Field: "url", Message: `want an http:// or https:// URL, got "file:///etc/passwd"`}}},
		{"bad status", map[string]any{"url": "http://x", "expect_status": 42}, []*sdk.FieldError{{Field: "expect_status", Message: "want an HTTP status 100..599, got 42"}}},
		{"bad regex", map[string]any{"url": "http://x", "body_regex": "("}, []*sdk.FieldError{{Field: "body_regex", Message: "error parsing regexp: missing closing ): `(`"}}},
		{"bad latency", map[string]any{"url": "http://x", "max_latency": "fast"}, []*sdk.FieldError{{Field: "max_latency", Message: `want a positive duration like 500ms or 2s, got "fast"`}}},
		{"negative retries", map[string]any{"url": "http://x", "retries": -1}, []*sdk.FieldError{{Field: "retries", Message: "must not be negative"}}},
		{"unknown", map[string]any{"url": "http://x", "method": "POST"}, []*sdk.FieldError{{Field: "method", Message: "unknown parameter"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New().Validate(t.Context(), stepContext(t, tt.params))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	srv := server(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name   string
		params map[string]any
		want   bool
		wantIn []string
	}{
		{"status and body", map[string]any{"url": srv.URL + "/ok", "body_contains": "ok"}, true,
			[]string{"GET " + srv.URL + "/ok → 200 in ", "body contains 'ok'"}},
		{"regex", map[string]any{"url": srv.URL + "/ok", "body_regex": `version 1\.4\.\d+`}, true,
			[]string{`body matches /version 1\.4\.\d+/`}},
		{"expected 404", map[string]any{"url": srv.URL + "/missing", "expect_status": 404}, true,
			[]string{"→ 404"}},
		{"wrong status", map[string]any{"url": srv.URL + "/missing"}, false,
			[]string{"→ 404", "want status 200", "body: no such page"}},
		{"body lacks", map[string]any{"url": srv.URL + "/ok", "body_contains": "degraded"}, false,
			[]string{"body lacks 'degraded'"}},
		{"too slow", map[string]any{"url": srv.URL + "/slow", "max_latency": "50ms"}, false,
			[]string{"slower than 50ms"}},
		{"timeout", map[string]any{"url": srv.URL + "/slow", "timeout": "50ms"}, false,
			[]string{"no response within 50ms"}},
		{"retries until ready", map[string]any{"url": srv.URL + "/flaky", "retries": 3, "interval": "10ms", "body_contains": "ready"}, true,
			[]string{"attempt 3/4", "→ 200"}},
		{"connection refused", map[string]any{"url": closed.URL, "retries": 1, "interval": "10ms"}, false,
			[]string{"attempt 2/2", "connection refused"}},
		{"body past the limit, checked", map[string]any{"url": srv.URL + "/big", "body_contains": "needle"}, false,
			[]string{"→ 200", "the body: larger than 1 MiB (limit): the body is not checked"}},
		{"body past the limit, status only", map[string]any{"url": srv.URL + "/big"}, true,
			[]string{"→ 200"}},
		{"password is not shown", map[string]any{"url": strings.Replace(srv.URL, "http://", "http://user:secret@", 1) + "/ok"}, true,
			[]string{"user:xxxxx@"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New().Verify(t.Context(), stepContext(t, tt.params))
			if err != nil {
				t.Fatal(err)
			}
			if got.GetPassed() != tt.want {
				t.Errorf("passed = %v, want %v; evidence %q", got.GetPassed(), tt.want, got.GetEvidence())
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(got.GetEvidence(), s) {
					t.Errorf("evidence %q lacks %q", got.GetEvidence(), s)
				}
			}
			if strings.Contains(got.GetEvidence(), "secret") {
				t.Errorf("evidence %q shows the password", got.GetEvidence())
			}
		})
	}
}

func TestApply(t *testing.T) {
	srv := server(t)
	res, err := New().Apply(t.Context(), stepContext(t, map[string]any{"url": srv.URL + "/ok"}), &sdktest.Recorder{})
	if err != nil || res.GetChanged() {
		t.Errorf("Apply of a passing check = %v, %v; want unchanged, no error", res, err)
	}
	rec := &sdktest.Recorder{}
	_, err = New().Apply(t.Context(), stepContext(t, map[string]any{"url": srv.URL + "/missing", "retries": 1, "interval": "1ms"}), rec)
	if !errors.Is(err, ErrCheckFailed) || !strings.Contains(err.Error(), "want status 200") {
		t.Errorf("Apply of a failing check: %v, want ErrCheckFailed with the evidence", err)
	}
	if !strings.Contains(rec.String(), "warn: attempt 1/2") {
		t.Errorf("Apply did not log the failed attempt: %q", rec.String())
	}
}

func TestCancelStopsRetries(t *testing.T) {
	srv := server(t)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := New().Verify(ctx, stepContext(t, map[string]any{"url": srv.URL + "/missing", "retries": 100, "interval": "50ms"}))
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("Verify after its context ended: %v after %s; want an error, promptly", err, time.Since(start))
	}
}

func TestPlan(t *testing.T) {
	got, err := New().Plan(t.Context(), stepContext(t, map[string]any{"url": "http://127.0.0.1:1/h", "body_contains": "ok", "retries": 2}))
	if err != nil {
		t.Fatal(err)
	}
	want := &sdk.Plan{Actions: []string{`would check GET http://127.0.0.1:1/h expecting 200, body containing "ok" (2 retries every 1s)`}}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
}

func conformanceCases(srv *httptest.Server) sdktest.Cases {
	return sdktest.Cases{
		Context: func(t *testing.T) *sdk.StepContext {
			return stepContext(t, map[string]any{"url": srv.URL + "/ok", "body_contains": "ok", "max_latency": "5s"})
		},
		Invalid: []sdktest.Invalid{
			{Name: "scheme", Params: map[string]any{"url": "ftp://x/"}, Field: "url"},
			{Name: "regex", Params: map[string]any{"url": srv.URL, "body_regex": "["}, Field: "body_regex"},
		},
	}
}

func TestConformance(t *testing.T) {
	sdktest.Run(t, New(), conformanceCases(server(t)))
}

func TestConformanceOverProcessBoundary(t *testing.T) {
	sdktest.RunBinary(t, sdktest.Self(t), conformanceCases(server(t)))
}
