package canonical

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

func TestMarshal(t *testing.T) {
	tests := []struct {
		name string
		msg  *inventoryv1.Package
		want string
	}{
		{
			name: "declaration order and unset fields omitted",
			msg:  &inventoryv1.Package{Version: "1.0", Name: "jq", Key: "dpkg/jq/amd64"},
			want: `{"key":"dpkg/jq/amd64","name":"jq","version":"1.0"}`,
		},
		{
			name: "no html escaping",
			msg:  &inventoryv1.Package{Name: "a<b>&c"},
			want: `{"name":"a<b>&c"}`,
		},
		{
			name: "empty message",
			msg:  &inventoryv1.Package{},
			want: `{}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Marshal(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("Marshal mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMarshalIsStable(t *testing.T) {
	m := &inventoryv1.Hashes{Sections: map[string]string{"b": "2", "a": "1", "c": "3"}}
	first, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		got, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(first) {
			t.Fatalf("run %d: %s != %s", i, got, first)
		}
	}
	if want := `{"sections":{"a":"1","b":"2","c":"3"}}`; string(first) != want {
		t.Errorf("got %s, want %s", first, want)
	}
}

func TestMarshalKeepsNumbers(t *testing.T) {
	got, err := Marshal(&inventoryv1.Volatile{UptimeSeconds: 1.5, MemoryFreeBytes: 18446744073709551615, BootTime: -1})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"uptime_seconds":1.5,"memory_free_bytes":"18446744073709551615","boot_time":"-1"}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
