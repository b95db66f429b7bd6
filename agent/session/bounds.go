package session

import (
	"encoding/json"
	"fmt"
)

// maxPayloadBytes bounds a deploy report or an outbox item's payload as
// the agent sends it. The controller refuses messages over 4 MiB and ends
// the session; a result that large would be sent again at every
// reconnect and never get through. Built-in plugins bound their outputs;
// external ones may not.
const maxPayloadBytes = 1 << 20

// maxErrorBytes bounds a result's error message.
const maxErrorBytes = 64 << 10

// maxStepText bounds a step's error in a shrunk report.
const maxStepText = 4 << 10

// boundJSON returns data when it is within maxPayloadBytes. Otherwise it
// returns a smaller JSON object: the same one without the steps' outputs
// and with their errors cut, or, if that is still too large, only its
// top-level scalar fields; both say what was left out.
func boundJSON(data []byte) []byte {
	if len(data) <= maxPayloadBytes {
		return data
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		out, _ := json.Marshal(map[string]any{"error": fmt.Sprintf("left out: %d bytes, over the %d-byte limit", len(data), maxPayloadBytes)})
		return out
	}
	note := fmt.Sprintf("left out: the steps' outputs (the report was %d bytes, over the %d-byte limit)", len(data), maxPayloadBytes)
	if steps, ok := obj["steps"].([]any); ok {
		for _, s := range steps {
			if m, ok := s.(map[string]any); ok {
				delete(m, "outputs")
				delete(m, "log")
				if e, ok := m["error"].(string); ok && len(e) > maxStepText {
					m["error"] = e[:maxStepText] + " [cut]"
				}
			}
		}
	}
	obj["truncated"] = note
	if out, err := json.Marshal(obj); err == nil && len(out) <= maxPayloadBytes {
		return out
	}
	small := map[string]any{}
	for k, v := range obj {
		switch v.(type) {
		case string, float64, bool, nil:
			if s, ok := v.(string); ok && len(s) > maxStepText {
				v = s[:maxStepText] + " [cut]"
			}
			small[k] = v
		}
	}
	small["truncated"] = fmt.Sprintf("left out: everything but the summary (the report was %d bytes, over the %d-byte limit)", len(data), maxPayloadBytes)
	out, _ := json.Marshal(small)
	return out
}
