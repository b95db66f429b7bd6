package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cairn-ops/cairn/internal/readlimit"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// MaxDocumentBytes bounds the size of an audit document read by ReadFile
// and Read. Real audits are a few megabytes at most; the controller
// stores none larger than its max_audit_bytes (64 MiB by default).
const MaxDocumentBytes = 256 << 20

// ReadFile reads, decodes and verifies the audit in the named file, at
// most MaxDocumentBytes. The file may be a pipe (/dev/stdin, <(...)).
// Errors name the file.
func ReadFile(path string) (*inventoryv1.Audit, error) {
	data, err := readlimit.Stream(path, "audit", MaxDocumentBytes)
	if err != nil {
		return nil, err
	}
	a, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Read reads at most MaxDocumentBytes from r and decodes and verifies the audit.
func Read(r io.Reader) (*inventoryv1.Audit, error) {
	return ReadLimit(r, MaxDocumentBytes)
}

// ReadLimit is Read with a size limit of limit bytes.
func ReadLimit(r io.Reader, limit int64) (*inventoryv1.Audit, error) {
	data, err := readlimit.Read(r, "audit document", limit)
	if err != nil {
		return nil, err
	}
	return Decode(data)
}

// Decode parses an audit document and verifies its hashes. The error says
// what is wrong and where (line and column for JSON syntax errors) and
// wraps ErrMalformed, ErrSchemaVersion or ErrTampered.
func Decode(data []byte) (*inventoryv1.Audit, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: empty document", ErrMalformed)
	}
	var head struct {
		SchemaVersion json.RawMessage `json:"schema_version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, syntaxError(data, err)
	}
	switch {
	case head.SchemaVersion == nil:
		return nil, fmt.Errorf("%w: no schema_version field (is this a Cairn audit?)", ErrMalformed)
	case !isUint(head.SchemaVersion):
		return nil, fmt.Errorf("%w: schema_version must be a whole number, found %s", ErrMalformed, head.SchemaVersion)
	case string(head.SchemaVersion) != fmt.Sprint(SchemaVersion):
		return nil, fmt.Errorf("%w: schema_version is %s, this build reads %d", ErrSchemaVersion, head.SchemaVersion, SchemaVersion)
	}
	a := &inventoryv1.Audit{}
	if err := protojson.Unmarshal(data, a); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := Verify(a); err != nil {
		return nil, err
	}
	return a, nil
}

func isUint(raw []byte) bool {
	if len(raw) == 0 {
		return false
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// syntaxError turns a JSON decoding error into one that says whether the
// document was cut short and where it broke.
func syntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || err.Error() == "unexpected end of JSON input":
		return fmt.Errorf("%w: truncated JSON (document ends after %d bytes)", ErrMalformed, len(data))
	case errors.As(err, &se):
		// Offset counts the offending byte; position wants the bytes before it.
		line, col := position(data, max(se.Offset-1, 0))
		return fmt.Errorf("%w: not valid JSON at line %d, column %d: %v", ErrMalformed, line, col, se)
	case errors.As(err, &te):
		return fmt.Errorf("%w: field %s: expected %s, found a JSON %s", ErrMalformed, te.Field, te.Type, te.Value)
	default:
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
}

// position converts a byte offset into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}
