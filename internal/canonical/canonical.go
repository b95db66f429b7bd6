// Package canonical encodes protobuf messages as canonical JSON: protojson
// with the field names of the .proto file, fields in their declaration
// order, map entries sorted by key, unset fields omitted and no
// insignificant whitespace. The same message always gives the same bytes,
// whichever build of Cairn encodes it, so the bytes can be hashed and
// compared. (protojson alone deliberately varies its whitespace from one
// binary to the next; compacting removes exactly that.)
//
// The form depends on the schema's declaration order, so reordering fields
// in a .proto file is a schema change: it changes every hash.
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
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("compact %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return buf.Bytes(), nil
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
