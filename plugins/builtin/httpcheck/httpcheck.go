// Package httpcheck is the built-in step plugin for HTTP acceptance
// checks: GET a URL and compare the status, the body (substring or regular
// expression) and the latency with what the step expects, with retries at
// an interval.
//
// Its place is a release's verify section: Verify returns pass or fail
// with evidence such as "GET http://127.0.0.1:8080/health → 200 in 12ms;
// body contains 'ok'". Used as a step, Apply changes nothing (changed is
// always false) but fails the step when the check does not pass, so a
// step can wait for a service to come up before the next one; a dry run
// skips it. Requests go straight to the URL: proxy settings in the
// environment are ignored, and each attempt opens a new connection so
// that latency is measured honestly.
package httpcheck

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/internal/readlimit"
	"github.com/cairn-ops/cairn/plugins/sdk"
)

// Name is the plugin's name in manifests and the builtin registry.
const Name = "httpcheck"

const version = "1.0.0"

// maxBody bounds the body read for the checks. A check of a larger body
// (body_contains, body_regex) fails and says so; the rest of the body is
// not read.
const maxBody = 1 << 20

// Plugin checks an HTTP endpoint.
type Plugin struct{}

var _ sdk.Plugin = (*Plugin)(nil)

// New returns the httpcheck plugin.
func New() sdk.Plugin { return &Plugin{} }

// params are the step parameters as written in the manifest.
type params struct {
	URL          string `json:"url"`
	ExpectStatus int    `json:"expect_status"`
	BodyContains string `json:"body_contains"`
	BodyRegex    string `json:"body_regex"`
	MaxLatency   string `json:"max_latency"`
	Retries      int    `json:"retries"`
	Interval     string `json:"interval"`
	Timeout      string `json:"timeout"`
}

// config is params checked and parsed.
type config struct {
	params
	shown      string // the URL without its password, for evidence
	regex      *regexp.Regexp
	maxLatency time.Duration
	interval   time.Duration
	timeout    time.Duration
}

func load(sc *sdk.StepContext) (*config, []*sdk.FieldError) {
	p := params{ExpectStatus: 200, Interval: "1s", Timeout: "10s"}
	errs := sdk.FieldErrors(sdk.DecodeParams(sc, &p))
	bad := errs.Add
	c := &config{params: p}
	if p.URL == "" {
		bad("url", "is required")
	} else if u, err := url.Parse(p.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url", "want an http:// or https:// URL, got %q", p.URL)
	} else {
		c.shown = u.Redacted()
	}
	if p.ExpectStatus < 100 || p.ExpectStatus > 599 {
		bad("expect_status", "want an HTTP status 100..599, got %d", p.ExpectStatus)
	}
	if p.BodyRegex != "" {
		re, err := regexp.Compile(p.BodyRegex)
		if err != nil {
			bad("body_regex", "%v", err)
		}
		c.regex = re
	}
	if p.Retries < 0 {
		bad("retries", "must not be negative")
	}
	duration := func(field, v string, dst *time.Duration, zeroOK bool) {
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || (d == 0 && !zeroOK) {
			bad(field, "want a positive duration like 500ms or 2s, got %q", v)
		}
		*dst = d
	}
	duration("max_latency", p.MaxLatency, &c.maxLatency, false)
	duration("interval", p.Interval, &c.interval, true)
	duration("timeout", p.Timeout, &c.timeout, false)
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

func mustLoad(sc *sdk.StepContext) (*config, error) {
	c, errs := load(sc)
	if len(errs) > 0 {
		return nil, sdk.ParamsError(errs)
	}
	return c, nil
}

// Describe implements sdk.Plugin.
func (*Plugin) Describe(context.Context) (*sdk.Description, error) {
	return &sdk.Description{
		Name:       Name,
		Version:    version,
		Idempotent: true,
		Summary:    "Check an HTTP endpoint: status, body substring or regex, latency, with retries. Changes nothing.",
		Params: []*sdk.ParamSpec{
			{Name: "url", Type: "string", Required: true, Description: "http:// or https:// URL to GET"},
			{Name: "expect_status", Type: "number", Description: "expected status (default 200)"},
			{Name: "body_contains", Type: "string", Description: "substring the body must contain"},
			{Name: "body_regex", Type: "string", Description: "regular expression (RE2) the body must match"},
			{Name: "max_latency", Type: "string", Description: "slowest acceptable response, e.g. 500ms"},
			{Name: "retries", Type: "number", Description: "attempts after the first one (default 0)"},
			{Name: "interval", Type: "string", Description: "pause between attempts (default 1s)"},
			{Name: "timeout", Type: "string", Description: "bound on one attempt (default 10s)"},
		},
	}, nil
}

// Validate implements sdk.Plugin.
func (*Plugin) Validate(_ context.Context, sc *sdk.StepContext) ([]*sdk.FieldError, error) {
	_, errs := load(sc)
	return errs, nil
}

// Plan implements sdk.Plugin: the check changes nothing.
func (*Plugin) Plan(_ context.Context, sc *sdk.StepContext) (*sdk.Plan, error) {
	c, err := mustLoad(sc)
	if err != nil {
		return nil, err
	}
	return &sdk.Plan{Actions: []string{"would check " + c.describe()}}, nil
}

// Apply implements sdk.Plugin: it runs the check and fails the step when
// the check does not pass; it never changes anything.
func (*Plugin) Apply(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (*sdk.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("step %q: %w", sc.GetStep(), err)
	}
	c, err := mustLoad(sc)
	if err != nil {
		return nil, err
	}
	if sc.GetDryRun() {
		r.Log(sdk.LevelInfo, "dry run: would check "+c.describe())
		return &sdk.Result{}, nil
	}
	passed, evidence, err := c.check(ctx, r)
	if err != nil {
		return nil, err
	}
	if !passed {
		return nil, fmt.Errorf("%w: %s", ErrCheckFailed, evidence)
	}
	r.Log(sdk.LevelInfo, evidence)
	return &sdk.Result{Outputs: map[string]string{"evidence": evidence}}, nil
}

// Verify implements sdk.Plugin.
func (*Plugin) Verify(ctx context.Context, sc *sdk.StepContext) (*sdk.Verification, error) {
	c, err := mustLoad(sc)
	if err != nil {
		return nil, err
	}
	passed, evidence, err := c.check(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &sdk.Verification{Passed: passed, Evidence: evidence}, nil
}

// Rollback implements sdk.Plugin: there is nothing to undo.
func (*Plugin) Rollback(context.Context, *sdk.StepContext, []byte) (*sdk.RollbackResult, error) {
	return &sdk.RollbackResult{Message: "nothing to undo: httpcheck changes nothing"}, nil
}

// describe says what the check expects, for plans and logs.
func (c *config) describe() string {
	s := fmt.Sprintf("GET %s expecting %d", c.shown, c.ExpectStatus)
	if c.BodyContains != "" {
		s += fmt.Sprintf(", body containing %q", c.BodyContains)
	}
	if c.regex != nil {
		s += fmt.Sprintf(", body matching /%s/", c.BodyRegex)
	}
	if c.maxLatency > 0 {
		s += fmt.Sprintf(", within %s", c.maxLatency)
	}
	if c.Retries > 0 {
		s += fmt.Sprintf(" (%d retries every %s)", c.Retries, c.interval)
	}
	return s
}

// check runs up to 1+retries attempts and returns whether one passed and
// the evidence of the last one. The error is for ctx ending only: a
// request that fails is a failed check.
func (c *config) check(ctx context.Context, r sdk.Reporter) (bool, string, error) {
	client := &http.Client{Transport: &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
	}}
	defer client.CloseIdleConnections()
	attempts := c.Retries + 1
	var evidence string
	for i := 1; i <= attempts; i++ {
		passed, ev := c.attempt(ctx, client)
		if err := ctx.Err(); err != nil {
			return false, "", fmt.Errorf("check %s: %w", c.shown, err)
		}
		evidence = ev
		if attempts > 1 {
			evidence = fmt.Sprintf("attempt %d/%d: %s", i, attempts, ev)
		}
		if passed {
			return true, evidence, nil
		}
		if i == attempts {
			break
		}
		if r != nil {
			r.Log(sdk.LevelWarn, evidence+"; retrying in "+c.interval.String())
		}
		select {
		case <-ctx.Done():
			return false, "", fmt.Errorf("check %s: %w", c.shown, ctx.Err())
		case <-time.After(c.interval):
		}
	}
	return false, evidence, nil
}

// attempt makes one request and checks the response.
func (c *config) attempt(ctx context.Context, client *http.Client) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return false, fmt.Sprintf("GET %s: %v", c.shown, err)
	}
	req.Header.Set("User-Agent", "cairn-httpcheck/"+version)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return false, fmt.Sprintf("GET %s: no response within %s", c.shown, c.timeout)
		}
		return false, fmt.Sprintf("GET %s: %v", c.shown, err)
	}
	defer resp.Body.Close()
	body, err := readlimit.Read(resp.Body, "the body", maxBody)
	latency := time.Since(start)
	seen := fmt.Sprintf("GET %s → %d in %s", c.shown, resp.StatusCode, roundLatency(latency))
	var fails, oks []string
	switch {
	case errors.Is(err, readlimit.ErrTooLarge) && (c.BodyContains != "" || c.regex != nil):
		return false, fmt.Sprintf("%s; %v: the body is not checked", seen, err)
	case errors.Is(err, readlimit.ErrTooLarge):
		body = nil // only the status and latency are checked
	case err != nil:
		return false, fmt.Sprintf("%s; reading the body: %v", seen, err)
	}
	if resp.StatusCode != c.ExpectStatus {
		fails = append(fails, fmt.Sprintf("want status %d", c.ExpectStatus))
	}
	if c.maxLatency > 0 && latency > c.maxLatency {
		fails = append(fails, fmt.Sprintf("slower than %s", c.maxLatency))
	}
	if c.BodyContains != "" {
		if strings.Contains(string(body), c.BodyContains) {
			oks = append(oks, fmt.Sprintf("body contains '%s'", c.BodyContains))
		} else {
			fails = append(fails, fmt.Sprintf("body lacks '%s'", c.BodyContains))
		}
	}
	if c.regex != nil {
		if c.regex.Match(body) {
			oks = append(oks, fmt.Sprintf("body matches /%s/", c.BodyRegex))
		} else {
			fails = append(fails, fmt.Sprintf("body does not match /%s/", c.BodyRegex))
		}
	}
	parts := append([]string{seen}, oks...)
	if len(fails) > 0 {
		parts = append(parts, fails...)
		if snippet := strings.TrimSpace(string(body)); snippet != "" {
			if len(snippet) > 200 {
				snippet = snippet[:200] + "…"
			}
			parts = append(parts, "body: "+strings.ToValidUTF8(snippet, "\uFFFD"))
		}
	}
	return len(fails) == 0, strings.Join(parts, "; ")
}

func roundLatency(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
