package agentv1

import (
	"bytes"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// ErrLegacyReport is the error of UnmarshalLegacy for JSON that is not
// the report it should be.
var ErrLegacyReport = errors.New("not a report as agents sent them in JSON")

// UnmarshalLegacy reads into m (an ApplyReport, a PlanReport or an
// Interruption) a report that an agent from before the typed reports
// sent as JSON (CommandResult.report_json, OutboxItem.payload). Those
// messages keep the JSON's field names and types, so protojson reads
// it. It refuses, wrapping ErrLegacyReport, data that is not one JSON
// object or that has a field m does not have, so that nothing the report
// said is dropped; m is then left empty.
func UnmarshalLegacy(data []byte, m proto.Message) error {
	name := m.ProtoReflect().Descriptor().Name()
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		proto.Reset(m)
		return fmt.Errorf("%w: the %s is not a JSON object", ErrLegacyReport, name)
	}
	if err := protojson.Unmarshal(data, m); err != nil {
		proto.Reset(m)
		return fmt.Errorf("%w: the %s: %w", ErrLegacyReport, name, err)
	}
	return nil
}
