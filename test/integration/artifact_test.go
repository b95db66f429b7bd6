package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestArtifacts drives the definitive media library through real
// processes: cairnctl pushes, lists, shows, fetches and locates artifacts
// on a controller whose artifact limit is set by the environment.
func TestArtifacts(t *testing.T) {
	c := startController(t)
	c.stop(t)
	c.env = append(c.env, "CAIRN_MAX_ARTIFACT_BYTES=3MiB")
	c.start(t)

	dir := t.TempDir()
	data := make([]byte, 2<<20+12345) // three 1 MiB chunks
	for i := range data {
		data[i] = byte(i*31 + i/4096)
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	file := filepath.Join(dir, "shop_1.4.2_amd64.deb")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}

	out := c.mustCtl(t, "artifact", "push", file, "--kind", "application")
	if got := strings.TrimSpace(out); got != digest {
		t.Fatalf("artifact push printed %q, want the digest %s", got, digest)
	}

	var list struct {
		Artifacts []struct {
			Digest, Name, Kind string
			SizeBytes          string `json:"size_bytes"`
		}
	}
	c.ctlJSON(t, &list, "artifact", "list")
	if len(list.Artifacts) != 1 || list.Artifacts[0].Digest != digest || list.Artifacts[0].Name != "shop_1.4.2_amd64.deb" ||
		list.Artifacts[0].Kind != "application" || list.Artifacts[0].SizeBytes != "2109497" {
		t.Errorf("artifact list: %+v", list.Artifacts)
	}

	show := c.mustCtl(t, "artifact", "show", digest[:10])
	for _, want := range []string{"sha256:" + digest, "shop_1.4.2_amd64.deb", "2109497 bytes", "user:admin"} {
		if !strings.Contains(show, want) {
			t.Errorf("artifact show does not say %q:\n%s", want, show)
		}
	}

	got := filepath.Join(dir, "fetched.deb")
	c.mustCtl(t, "artifact", "get", digest, "-o", got)
	if b, err := os.ReadFile(got); err != nil || !bytes.Equal(b, data) {
		t.Errorf("artifact get wrote %d bytes (%v), want the pushed content", len(b), err)
	}
	if r := c.ctl(t, "artifact", "get", digest, "-o", got); r.code != 1 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("artifact get over an existing file: exit %d, %q; want 1 naming --force", r.code, r.stderr)
	}
	c.mustCtl(t, "artifact", "get", digest[:8], "-o", got, "--force")

	if where := c.mustCtl(t, "artifact", "where", digest); !strings.Contains(where, "not installed on any node") {
		t.Errorf("artifact where: %q", where)
	}

	// The same content under another name: the existing artifact.
	copyFile := filepath.Join(dir, "renamed.deb")
	if err := os.WriteFile(copyFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := c.ctl(t, "artifact", "push", copyFile, "--kind", "utility")
	if r.code != 0 || strings.TrimSpace(r.stdout) != digest || !strings.Contains(r.stderr, "already in the DML as shop_1.4.2_amd64.deb") {
		t.Errorf("second push: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	c.ctlJSON(t, &list, "artifact", "list")
	if len(list.Artifacts) != 1 {
		t.Errorf("after the second push there are %d artifacts, want 1", len(list.Artifacts))
	}

	// Over the limit: refused with a clear message, nothing stored.
	big := filepath.Join(dir, "big.iso")
	if err := os.WriteFile(big, make([]byte, 3<<20+1), 0o644); err != nil {
		t.Fatal(err)
	}
	r = c.ctl(t, "artifact", "push", big, "--kind", "system-software")
	if r.code != 1 || !strings.Contains(r.stderr, "more than the limit of 3145728 bytes") || !strings.Contains(r.stderr, "max_artifact_bytes") {
		t.Errorf("oversize push: exit %d, stderr %q; want exit 1 naming the limit", r.code, r.stderr)
	}
	c.ctlJSON(t, &list, "artifact", "list")
	if len(list.Artifacts) != 1 {
		t.Errorf("after the oversize push there are %d artifacts, want 1", len(list.Artifacts))
	}
	if entries, err := os.ReadDir(filepath.Join(c.dataDir, "blobs", "tmp", "uploads")); err == nil && len(entries) != 0 {
		t.Errorf("the oversize push left upload files: %v", entries)
	}
}
