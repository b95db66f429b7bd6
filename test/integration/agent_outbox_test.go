package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-ops/cairn/agent/journal"
	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// TestAgentMigratesStateJSON starts an agent on the data dir of an older
// agent, whose state.json holds results the controller never
// acknowledged: the agent moves them into journal.db, delivers each to
// the controller once (the commands end with those results and do not
// run again), and leaves no state.json; a restart sends nothing again.
func TestAgentMigratesStateJSON(t *testing.T) {
	c := startController(t)
	a := newAgent(t, "outbox-host")
	node := c.enroll(t, []*agentProc{a}, []string{"env=outbox"})["outbox-host"]
	if code := a.p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("agent exited with %d on SIGTERM, want 0", code)
	}

	// Two audit commands, stored while the node is away: the older agent
	// ran them, kept their results in state.json and stopped before the
	// controller acknowledged them.
	var cmds []string
	for range 2 {
		var resp struct {
			Commands []commandJSON `json:"commands"`
		}
		c.ctlJSON(t, &resp, "audit", "run", "--node", node, "--collectors", "os")
		if len(resp.Commands) != 1 {
			t.Fatalf("audit run: %+v, want one command", resp.Commands)
		}
		cmds = append(cmds, resp.Commands[0].ID)
	}
	state := fmt.Sprintf(`{
  "completed": [%q, %q],
  "outbox": [
    {"command_id": %q, "ok": false, "error": "result 1 kept in state.json"},
    {"command_id": %q, "ok": false, "error": "result 2 kept in state.json"}
  ]
}
`, cmds[0], cmds[1], cmds[0], cmds[1])
	statePath := filepath.Join(a.dataDir, "state.json")
	if err := os.WriteFile(statePath, []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}

	a.start(c, "--log-level", "debug")
	first := a.p
	// The agent opens its journal only while it uses it: once the
	// controller has acknowledged both results, the outbox is empty.
	waitFor(t, startTimeout, "the migrated results acknowledged", func() bool {
		if first.exited() {
			t.Fatalf("agent exited with %d", first.code)
		}
		j, err := journal.Open(a.dataDir, journal.Options{Timeout: 100 * time.Millisecond})
		if err != nil {
			return false
		}
		defer j.Close()
		items, err := j.List(t.Context(), 0, 0)
		return err == nil && len(items) == 0 && strings.Count(first.out.String(), "outbox item acknowledged") == 2
	})
	if _, err := os.Stat(statePath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("state.json after the start: %v, want it gone", err)
	}
	if code := first.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("agent exited with %d on SIGTERM, want 0", code)
	}

	// A restart has nothing left to migrate or send.
	a.start(c, "--log-level", "debug")
	waitFor(t, startTimeout, "the restarted agent connected", func() bool {
		return strings.Contains(a.p.out.String(), "session opened")
	})
	if code := a.p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("agent exited with %d on SIGTERM, want 0", code)
	}
	for _, run := range []struct {
		p           *proc
		moved, sent int
		what        string
	}{
		{p: first, moved: 1, sent: 1, what: "first start"},
		{p: a.p, moved: 0, sent: 0, what: "restart"},
	} {
		out := run.p.out.String()
		if n := strings.Count(out, "moved state.json into the journal"); n != run.moved {
			t.Errorf("%s: state.json moved %d times, want %d", run.what, n, run.moved)
		}
		if n := strings.Count(out, "outbox sent:"); n != run.sent || (run.sent > 0 && !strings.Contains(out, "outbox sent: node="+node+" items=2")) {
			t.Errorf("%s: %d outbox sends, want %d (of 2 items)", run.what, n, run.sent)
		}
	}

	c.stop(t)
	withStore(t, c, func(tx store.Tx) error {
		for i, id := range cmds {
			rec, err := tx.Command(id)
			if err != nil {
				return err
			}
			want := fmt.Sprintf("result %d kept in state.json", i+1)
			if rec.GetState() != controllerv1.CommandRecord_STATE_FAILED || rec.GetError() != want {
				t.Errorf("command %s: %s, error %q; want failed with %q (the migrated result)", id, rec.GetState(), rec.GetError(), want)
			}
		}
		audits, err := tx.NodeAudits(node)
		if err != nil {
			return err
		}
		if len(audits) != 0 {
			b, _ := json.Marshal(audits)
			t.Errorf("node has audits %s: a command whose result was migrated ran again", b)
		}
		return nil
	})
}
