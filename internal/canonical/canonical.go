// Package canonical encodes protobuf messages as canonical JSON: protojson
// field names as in the .proto file, object keys sorted, no insignificant
// whitespace, unset fields omitted. The same message always gives the
// same bytes, so the bytes can be hashed and compared; protojson alone
// deliberately varies its whitespace between runs.
package canonical

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var marshalOptions = protojson.MarshalOptions{UseProtoNames: true}

// Marshal returns the canonical JSON encoding of m.
func Marshal(m proto.Message) ([]byte, error) {
	raw, err := marshalOptions.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return Normalize(raw)
}

// Normalize rewrites any JSON document in canonical form: keys sorted,
// compact, numbers kept as written, no HTML escaping.
func Normalize(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonicalize: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("canonicalize: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Sum returns the lowercase hex sha256 of m's canonical encoding.
func Sum(m proto.Message) (string, error) {
	b, err := Marshal(m)
	if err != nil {
		return "", err
	}
	return SumBytes(b), nil
}

// SumBytes returns the lowercase hex sha256 of b.
func SumBytes(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
