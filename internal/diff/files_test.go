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
// tracked them, and a path only one tracked is listed as not compared,
// never as unchanged (commonFiles).
func TestCompareWhereBothLooked(t *testing.T) {
	tests := []struct {
		name          string
		before, after *inventoryv1.Audit
		// want is the diff's summary; wantNC the paths not compared.
		want   string
		wantNC []PathNotCompared
	}{
		{
			name:   "a path only the after audit tracked is not compared",
			before: filesAudit([]string{"/etc/ssh"}, "/etc/ssh", "/etc/ssh/sshd_config"),
			after:  filesAudit([]string{"/etc/ssh", "/etc/greeter/greeter.conf"}, "/etc/greeter/greeter.conf", "/etc/ssh", "/etc/ssh/sshd_config"),
			want:   "no changes where both audits looked; 1 tracked path not compared: /etc/greeter/greeter.conf",
			wantNC: []PathNotCompared{{Path: "/etc/greeter/greeter.conf", TrackedBy: SideAfter, Files: 1}},
		},
		{
			name:   "a path only the before audit tracked is not compared",
			before: filesAudit([]string{"/etc/a.conf", "/etc/ssh"}, "/etc/a.conf", "/etc/ssh", "/etc/ssh/sshd_config"),
			after:  filesAudit([]string{"/etc/ssh"}, "/etc/ssh", "/etc/ssh/sshd_config"),
			want:   "no changes where both audits looked; 1 tracked path not compared: /etc/a.conf",
			wantNC: []PathNotCompared{{Path: "/etc/a.conf", TrackedBy: SideBefore, Files: 1}},
		},
		{
			name:   "a tracked path absent on its side is still not compared",
			before: filesAudit([]string{"/etc/ssh"}, "/etc/ssh"),
			after:  filesAudit([]string{"/etc/gone.conf", "/etc/ssh"}, "/etc/ssh"),
			want:   "no changes where both audits looked; 1 tracked path not compared: /etc/gone.conf",
			wantNC: []PathNotCompared{{Path: "/etc/gone.conf", TrackedBy: SideAfter}},
		},
		{
			name:   "a change where both tracked is still one",
			before: filesAudit([]string{"/etc/ssh"}, "/etc/ssh", "/etc/ssh/sshd_config"),
			after:  filesAudit([]string{"/etc/ssh", "/opt/x"}, "/etc/ssh", "/etc/ssh/sshd_config", "/etc/ssh/extra", "/opt/x"),
			want:   "1 file added; 1 tracked path not compared: /opt/x",
			wantNC: []PathNotCompared{{Path: "/opt/x", TrackedBy: SideAfter, Files: 1}},
		},
		{
			name:   "globs and tracked directories cover their files",
			before: filesAudit([]string{"/etc/*.conf", "/srv"}, "/etc/a.conf", "/srv", "/srv/www", "/srv/www/index.html"),
			after:  filesAudit([]string{"/etc/a.conf", "/srv/www"}, "/etc/a.conf", "/srv/www", "/srv/www/index.html", "/srv/www/new.html"),
			want:   "1 file added; 2 tracked paths not compared: /etc/*.conf, /srv",
			wantNC: []PathNotCompared{
				{Path: "/etc/*.conf", TrackedBy: SideBefore},
				{Path: "/srv", TrackedBy: SideBefore, Files: 1},
			},
		},
		{
			name:   "many paths are counted in the summary",
			before: filesAudit([]string{"/a", "/b", "/c", "/d", "/e"}),
			after:  filesAudit(nil),
			want:   "no changes where both audits looked; 5 tracked paths not compared: /a, /b, /c and 2 more",
			wantNC: []PathNotCompared{
				{Path: "/a", TrackedBy: SideBefore}, {Path: "/b", TrackedBy: SideBefore}, {Path: "/c", TrackedBy: SideBefore},
				{Path: "/d", TrackedBy: SideBefore}, {Path: "/e", TrackedBy: SideBefore},
			},
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
			r := Compare(tc.before, tc.after)
			if diff := cmp.Diff(tc.want, r.Summary); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantNC, r.PathsNotCompared()); diff != "" {
				t.Errorf("PathsNotCompared (-want +got):\n%s", diff)
			}
			if got, want := r.Counts.PathsNotCompared, len(tc.wantNC); got != want {
				t.Errorf("Counts.PathsNotCompared = %d, want %d", got, want)
			}
			if r.Complete() != (len(tc.wantNC) == 0) {
				t.Errorf("Complete() = %v with %d paths not compared", r.Complete(), len(tc.wantNC))
			}
		})
	}
}
