package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/cairn-ops/cairn/internal/canonical"
	"github.com/cairn-ops/cairn/internal/jsonyaml"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Marshal returns a's canonical JSON encoding, as hashed. It does not seal.
func Marshal(a *inventoryv1.Audit) ([]byte, error) {
	return canonical.Marshal(a)
}

// WriteJSON writes a as indented canonical JSON followed by a newline. The
// indentation is deterministic, so equal audits give equal files.
func WriteJSON(w io.Writer, a *inventoryv1.Audit) error {
	b, err := canonical.Marshal(a)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/4)
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return fmt.Errorf("indent audit: %w", err)
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// WriteYAML writes a as YAML with the same field names and order as the
// JSON encoding. YAML output is for reading; audits are read back as JSON.
func WriteYAML(w io.Writer, a *inventoryv1.Audit) error {
	b, err := canonical.Marshal(a)
	if err != nil {
		return err
	}
	return jsonyaml.Write(w, b)
}
