package audit

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode: it must never panic, and a
// document it accepts must encode and decode again to the same hashes.
// Seeds: testdata/fuzz/FuzzDecode (a real audit, truncated, tampered,
// another schema version); keep any crasher found there.
func FuzzDecode(f *testing.F) {
	f.Add(encode(f, sample(f)))
	f.Add([]byte(`{"schema_version": 1}`))
	f.Add([]byte(`{"schema_version": 1, "hashes": {"content": "x", "document": "y"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Decode(data)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteJSON(&buf, a); err != nil {
			t.Fatalf("accepted audit does not encode: %v", err)
		}
		b, err := Decode(buf.Bytes())
		if err != nil {
			t.Fatalf("re-encoded audit does not decode: %v", err)
		}
		if b.GetHashes().GetDocument() != a.GetHashes().GetDocument() {
			t.Fatalf("document hash changed across a round trip")
		}
	})
}
