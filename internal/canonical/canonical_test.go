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
			name: "keys sorted and unset fields omitted",
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

func TestNormalizeKeepsNumbers(t *testing.T) {
	got, err := Normalize([]byte(`{ "b": 18446744073709551615, "a": 1.50 }`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":1.50,"b":18446744073709551615}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestNormalizeRejectsInvalid(t *testing.T) {
	if _, err := Normalize([]byte(`{"a":`)); err == nil {
		t.Fatal("want error for truncated JSON")
	}
}
