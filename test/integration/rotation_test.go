package integration

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/internal/refusal"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// rotate runs cairn-controller rotate on c's data directory and requires
// exit 0.
func (c *controller) rotate(t *testing.T, args ...string) string {
	t.Helper()
	r := c.run(t, "cairn-controller", append(append([]string{"rotate"}, args...), "--data-dir", c.dataDir)...)
	if r.code != 0 {
		t.Fatalf("cairn-controller rotate %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// auditEntry is an audit-log entry as auditlog list -o json prints it.
type auditEntry struct {
	Actor  string `json:"actor"`
	Action string `json:"action"`
	Object string `json:"object"`
}

// auditEntries lists the audit log.
func (c *controller) auditEntries(t *testing.T) []auditEntry {
	t.Helper()
	var list struct {
		Entries []auditEntry `json:"entries"`
	}
	c.ctlJSON(t, &list, "auditlog", "list")
	return list.Entries
}

// auditActions returns "ACTOR ACTION" of every audit-log entry whose
// action starts with prefix.
func (c *controller) auditActions(t *testing.T, prefix string) []string {
	t.Helper()
	var out []string
	for _, e := range c.auditEntries(t) {
		if strings.HasPrefix(e.Action, prefix) {
			out = append(out, e.Actor+" "+e.Action)
		}
	}
	return out
}

// pemCerts parses every certificate of a PEM file.
func pemCerts(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return out
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// agentTrust is what an agent's trust.json holds, as far as these tests
// read it.
type agentTrust struct {
	CAs []struct {
		RetiresAt string `json:"retires_at"`
	} `json:"cas"`
	ReleaseKeys []struct {
		RetiresAt string `json:"retires_at"`
	} `json:"release_keys"`
}

func readTrust(a *agentProc) (agentTrust, bool) {
	var tr agentTrust
	data, err := os.ReadFile(filepath.Join(a.dataDir, "trust.json"))
	if err != nil || json.Unmarshal(data, &tr) != nil {
		return tr, false
	}
	return tr, true
}

// TestCARotationWithAgentsConnected rotates the controller's CA under two
// connected agents: each saves the new CA and renews its certificate from
// it during the overlap and stays usable; cairnctl keeps working with the
// ca.pem bundle; after the overlap the controller presents its
// certificate from the new CA, agents still work (a restarted one too),
// and a certificate of the old CA is refused by reason; a controller
// killed and restarted records each rotation once.
func TestCARotationWithAgentsConnected(t *testing.T) {
	t.Parallel()
	c := startController(t)
	agents := []*agentProc{newAgent(t, "rot-1"), newAgent(t, "rot-2")}
	ids := c.enroll(t, agents, []string{"env=rot", "env=rot"})
	oldCert, err := tls.LoadX509KeyPair(filepath.Join(agents[0].dataDir, "node.pem"), filepath.Join(agents[0].dataDir, "node-key.pem"))
	if err != nil {
		t.Fatal(err)
	}

	out := c.rotate(t, "ca", "--overlap", "1h")
	if !strings.Contains(out, "CA rotated (generation 1)") {
		t.Errorf("rotate ca said:\n%s", out)
	}
	bundle := pemCerts(t, c.caPath())
	if len(bundle) != 2 {
		t.Fatalf("ca.pem holds %d certificates during the overlap, want 2", len(bundle))
	}
	newCA := bundle[1]
	waitFor(t, 2*startTimeout, "both agents to renew from the new CA and reconnect", func() bool {
		for _, a := range agents {
			certs := pemCerts(t, filepath.Join(a.dataDir, "node.pem"))
			if tr, ok := readTrust(a); !ok || len(tr.CAs) != 2 || certs[0].CheckSignatureFrom(newCA) != nil {
				return false
			}
		}
		nodes := c.nodes(t)
		return nodes[ids["rot-1"]].State == "STATE_CONNECTED" && nodes[ids["rot-2"]].State == "STATE_CONNECTED"
	})
	c.runAudits(t, 2, "--selector", "env=rot")

	out = c.rotate(t, "ca", "--finish")
	if !strings.Contains(out, "ca rotation finished") {
		t.Errorf("rotate ca --finish said:\n%s", out)
	}
	// Within a second the controller presents its certificate from the
	// new CA (cairnctl trusts the new ca.pem, which is that CA alone).
	waitFor(t, startTimeout, "the controller to present its certificate from the new CA", func() bool {
		conn, err := tls.Dial("tcp", c.addr, &tls.Config{RootCAs: poolOf(newCA), ServerName: "127.0.0.1"})
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
	if got := pemCerts(t, c.caPath()); len(got) != 1 || !got[0].Equal(newCA) {
		t.Errorf("ca.pem after the overlap holds %d certificates, want the new CA alone", len(got))
	}
	c.mustCtl(t, "whoami")

	// A certificate of the old CA is refused, by reason, naming the CA.
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: poolOf(newCA), Certificates: []tls.Certificate{oldCert}, ServerName: "127.0.0.1",
	})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = agentv1.NewAgentClient(conn).Renew(t.Context(), &agentv1.RenewRequest{})
	t.Logf("the old CA's certificate after the overlap: %v", err)
	if status.Code(err) != codes.PermissionDenied || refusal.Of(err) != refusal.CertificateRetired || !strings.Contains(status.Convert(err).Message(), "which retired at") {
		t.Errorf("Renew with the old CA's certificate = %v (reason %q), want PermissionDenied, %s", err, refusal.Of(err), refusal.CertificateRetired)
	}

	// The agents work after the overlap; one restarted reconnects.
	c.runAudits(t, 2, "--selector", "env=rot")
	agents[1].p.stop(t, syscall.SIGTERM)
	agents[1].start(c)
	// A controller that dies and comes back records each rotation once.
	c.serve.stop(t, syscall.SIGKILL)
	c.start(t)
	waitFor(t, 2*startTimeout, "both agents to reconnect", func() bool {
		nodes := c.nodes(t)
		return nodes[ids["rot-1"]].State == "STATE_CONNECTED" && nodes[ids["rot-2"]].State == "STATE_CONNECTED"
	})
	c.runAudits(t, 2, "--selector", "env=rot")
	user := osUserName(t)
	got := c.auditActions(t, "ca.")
	want := []string{"local:" + user + " ca.rotate", "local:" + user + " ca.rotate.finish"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log rotation entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	c.mustCtl(t, "auditlog", "verify")
}

// TestSigningKeyRotation rotates the release-signing key while the
// controller is down (it was killed): the restarted controller records
// the rotation and tells the agents. A release sealed with the new key
// deploys; one sealed with the old key deploys during the overlap; after
// the overlap the controller refuses to start its rollout and an agent
// refuses its deploy command (given it past a gate), each naming the
// retired key.
func TestSigningKeyRotation(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 2)
	c := f.c
	old := f.release(t, "versioned.yaml", map[string]string{"Version": "1.0.1"})

	c.serve.stop(t, syscall.SIGKILL)
	out := c.rotate(t, "signing-key", "--overlap", "1h")
	if !strings.Contains(out, "Release-signing key rotated (generation 1)") {
		t.Errorf("rotate signing-key said:\n%s", out)
	}
	c.start(t)
	waitFor(t, 2*startTimeout, "both agents to hear of the new release key", func() bool {
		for _, a := range f.agents {
			if tr, ok := readTrust(a); !ok || len(tr.ReleaseKeys) != 2 {
				return false
			}
		}
		return true
	})
	if got := c.auditActions(t, "signing-key."); len(got) != 1 || !strings.HasSuffix(got[0], " signing-key.rotate") {
		t.Errorf("audit log: %v, want one signing-key.rotate", got)
	}

	deploy := func(ref string, flags ...string) string {
		t.Helper()
		return f.start(t, ref, append([]string{"--strategy", "all-at-once", "--max-parallel", "2"}, flags...)...)
	}
	sealedNew := f.release(t, "versioned.yaml", map[string]string{"Version": "1.0.2"})
	f.waitRollout(t, deploy(sealedNew), state.RolloutCompleted)
	// During the overlap the old key's release deploys, to the first
	// wave; the second waits at a gate.
	gated := f.start(t, old, "--waves", "1,100%", "--gate", "after-wave:1")
	f.waitRollout(t, gated, state.RolloutPaused)

	c.rotate(t, "signing-key", "--finish")
	waitFor(t, 2*startTimeout, "both agents to hear that the old key retired", func() bool {
		for _, a := range f.agents {
			tr, ok := readTrust(a)
			if !ok || len(tr.ReleaseKeys) != 2 || tr.ReleaseKeys[0].RetiresAt == "" {
				return false
			}
			if at, err := time.Parse(time.RFC3339Nano, tr.ReleaseKeys[0].RetiresAt); err != nil || time.Now().Before(at) {
				return false
			}
		}
		return true
	})
	f.must(t, operator, "rollout", "resume", gated, "--note", "after the overlap")
	rec := f.waitFor(t, gated, "the second node to fail", func(rec *controllerv1.RolloutRecord) bool {
		return f.node(t, rec, "itest-2").GetState() == state.NodeFailed
	})
	msg := f.node(t, rec, "itest-2").GetError()
	t.Logf("itest-2 refused the release signed by the retired key: %s", msg)
	if !strings.Contains(msg, "which retired at") || !strings.Contains(msg, "signed by release key") {
		t.Errorf("itest-2 failed with %q; want the agent's refusal naming the retired key", msg)
	}
	if got := dpkgVersion(t, f.agents["itest-2"].root, "cairn-itest-app"); got != "1.0.2" {
		t.Errorf("itest-2 has cairn-itest-app %q after the refused deployment, want 1.0.2 untouched", got)
	}
	f.waitRollout(t, gated, state.RolloutHalted, state.RolloutCompleted)
	r := f.as(t, operator, "rollout", "start", old, "--selector", "env=itest")
	t.Logf("rollout start after the overlap: exit %d: %s", r.code, r.stderr)
	if r.code == 0 || !strings.Contains(r.stderr, "signed by release key") || !strings.Contains(r.stderr, "which retired at") {
		t.Errorf("rollout start of a release signed by the retired key: exit %d, stderr %q; want refused, naming the retired key", r.code, r.stderr)
	}
}

// osUserName is who runs the tests, as cairn-controller rotate records
// it.
func osUserName(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}
