package collector

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestHostileRoot runs collectors on trees whose files are not what they
// seem: a symlink to /dev/zero (endless), a named pipe (a read would wait
// for a writer forever) or a file past the collector's limit. Each
// collector must come back, with an error or a warning naming the file
// and what is wrong with it, instead of hanging or exhausting memory.
func TestHostileRoot(t *testing.T) {
	type hostile struct {
		name string
		// make puts the hostile file at path, whose limit is limit.
		make func(t *testing.T, path string, limit int64)
		want string
	}
	kinds := []hostile{
		{"symlink to /dev/zero", func(t *testing.T, path string, _ int64) {
			if err := os.Symlink("/dev/zero", path); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file (a character device)"},
		{"named pipe", func(t *testing.T, path string, _ int64) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file (a named pipe)"},
		{"over the limit", func(t *testing.T, path string, limit int64) {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(limit + 1); err != nil { // sparse: no room on disk
				t.Fatal(err)
			}
		}, "(limit)"},
	}
	tests := []struct {
		collector string
		// dirs exist in the tree, good files with their content; files are
		// made hostile, each with its limit.
		dirs  []string
		good  map[string]string
		files map[string]int64
	}{
		{"os", []string{"/etc", "/proc/sys/kernel"}, nil, map[string]int64{"/etc/os-release": maxConfigBytes}},
		{"packages", []string{"/var/lib/dpkg"}, nil, map[string]int64{"/var/lib/dpkg/status": maxLineBytes}},
		{"kernel_modules", []string{"/proc/sys/kernel"}, nil, map[string]int64{"/proc/modules": maxLineBytes}},
		{"memory", []string{"/proc"}, nil, map[string]int64{"/proc/meminfo": maxLineBytes}},
		{"memory", []string{"/proc", "/sys/firmware/dmi/tables"}, map[string]string{"/proc/meminfo": "MemTotal: 1024 kB\n"}, map[string]int64{hwSMBIOSTablePath: maxSMBIOSBytes}},
		{"dmi", []string{"/sys/class/dmi/id"}, nil, map[string]int64{"/sys/class/dmi/id/product_name": maxAttrBytes}},
		{"volatile", []string{"/proc/sys/kernel/random"}, nil, map[string]int64{
			"/proc/stat": maxProcBytes, "/proc/loadavg": maxAttrBytes, "/proc/sys/kernel/random/boot_id": maxConfigBytes}},
	}
	reg := Registry()
	for _, tt := range tests {
		for _, k := range kinds {
			var files []string
			for f := range tt.files {
				files = append(files, filepath.Base(f))
			}
			t.Run(tt.collector+"/"+strings.Join(files, ",")+"/"+k.name, func(t *testing.T) {
				root := t.TempDir()
				for _, d := range tt.dirs {
					if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				for f, content := range tt.good {
					if err := os.WriteFile(filepath.Join(root, f), []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				for f, limit := range tt.files {
					k.make(t, filepath.Join(root, f), limit)
				}
				_, warns, err := swRun(t.Context(), reg[tt.collector], Env{Root: root})
				said := strings.Join(warns, "\n")
				if err != nil {
					said += "\n" + err.Error()
				}
				for f := range tt.files {
					found := false
					for _, line := range strings.Split(said, "\n") {
						if strings.Contains(line, filepath.Join(root, f)) && strings.Contains(line, k.want) {
							found = true
						}
					}
					if !found {
						t.Errorf("nothing says %s is %s; error and warnings:\n%s", f, k.want, said)
					}
				}
			})
		}
	}
}
