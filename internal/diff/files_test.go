package diff

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

func filesAudit(patterns []string, paths ...string) *inventoryv1.Audit {
	fs := &inventoryv1.Files{Patterns: patterns}
	for _, p := range paths {
		fs.Files = append(fs.Files, &inventoryv1.File{Key: p, Path: p, Type: "file", Mode: "0644"})
	}
	return &inventoryv1.Audit{
		Files:      fs,
		Collectors: []*inventoryv1.CollectorStatus{{Name: "files", Section: "files", State: inventoryv1.CollectorStatus_STATE_OK}},
	}
}

// TestCompareWhereBothLooked: files are compared where both audits
// tracked them (commonFiles).
func TestCompareWhereBothLooked(t *testing.T) {
	tests := []struct {
		name          string
		before, after *inventoryv1.Audit
		// want is the diff's summary of the files section.
		want string
	}{
		{
			name:   "a path only the after audit tracked is not a change",
			before: filesAudit([]string{"/etc/ssh"}, "/etc/ssh", "/etc/ssh/sshd_config"),
			after:  filesAudit([]string{"/etc/ssh", "/etc/greeter/greeter.conf"}, "/etc/greeter/greeter.conf", "/etc/ssh", "/etc/ssh/sshd_config"),
			want:   "no changes",
		},
		{
			name:   "a change where both tracked is still one",
			before: filesAudit([]string{"/etc/ssh"}, "/etc/ssh", "/etc/ssh/sshd_config"),
			after:  filesAudit([]string{"/etc/ssh", "/opt/x"}, "/etc/ssh", "/etc/ssh/sshd_config", "/etc/ssh/extra", "/opt/x"),
			want:   "1 file added",
		},
		{
			name:   "globs and tracked directories cover their files",
			before: filesAudit([]string{"/etc/*.conf", "/srv"}, "/etc/a.conf", "/srv", "/srv/www", "/srv/www/index.html"),
			after:  filesAudit([]string{"/etc/a.conf", "/srv/www"}, "/etc/a.conf", "/srv/www", "/srv/www/index.html", "/srv/www/new.html"),
			want:   "1 file added",
		},
		{
			name:   "the same patterns compare everything",
			before: filesAudit([]string{"/etc"}, "/etc", "/etc/a"),
			after:  filesAudit([]string{"/etc"}, "/etc", "/etc/a", "/etc/b"),
			want:   "1 file added",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare(tc.before, tc.after).Summary
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
		})
	}
}
