package bytesize

import (
	"testing"
)

func TestFormat(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0 B"},
		{512, "512 B"},
		{1023, "1023 B"},
		{1024, "1 KiB"},
		{1536, "1.5 KiB"},
		{256 << 20, "256 MiB"},
		{51539607552, "48 GiB"},
		{500107862016, "465.8 GiB"},
		{1 << 40, "1 TiB"},
		{16<<30 - 1, "16.0 GiB"},
		{1_048_576_000, "1000 MiB"},
		{16<<30 - 200<<20, "15.8 GiB"},
		{1<<30 - 1, "1.0 GiB"}, // not "1024.0 MiB"
		{4 << 40, "4 TiB"},
		{^uint64(0), "16.0 EiB"},
	}
	for _, tt := range tests {
		if got := Format(tt.in); got != tt.want {
			t.Errorf("Format(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"1048576", 1 << 20, false},
		{"256MiB", 256 << 20, false},
		{"256 MiB", 256 << 20, false},
		{"1G", 1 << 30, false},
		{"1g", 1 << 30, false},
		{"512k", 512 << 10, false},
		{"1.5KiB", 1536, false},
		{"2GB", 2e9, false},
		{"0", 0, false},
		{"", 0, true},
		{"G", 0, true},
		{"12 parsecs", 0, true},
		{"1.2.3M", 0, true},
		{"99999999999T", 0, true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Parse(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestValueRoundTrip(t *testing.T) {
	var v Value
	if err := v.Set("256MiB"); err != nil {
		t.Fatal(err)
	}
	if v.String() != "256 MiB" || v.Type() != "size" {
		t.Errorf("got %q (%s)", v.String(), v.Type())
	}
	if err := v.Set("lots"); err == nil {
		t.Error("Set(lots) accepted")
	}
}
