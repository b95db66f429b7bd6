package manifest

import (
	"encoding/json"
	"fmt"
	"time"
)

// Canonical returns the manifest as deterministic JSON: the parsed
// content, with the YAML keys as JSON names, map keys sorted, durations
// as Go duration strings ("2m0s") and the SLA's success rate as a
// fraction. Where the manifest came from (File, Dir), its line numbers and
// its formatting, comments and key order are not part of it, so two files
// that say the same thing encode the same. Defaults are filled in (a
// step's timeout, approvals.required 1, a known error's status open), so
// leaving a default out and writing it out encode the same too.
//
// The releases issue hashes this encoding (with the components' resolved
// digests) into the release digest that sealing signs: change nothing
// here without a new apiVersion, or every sealed digest changes.
func (m *Manifest) Canonical() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode release manifest %s@%s: %w", m.Name, m.Version, err)
	}
	return b, nil
}

// MarshalJSON encodes the step with its timeout as a duration string.
func (s Step) MarshalJSON() ([]byte, error) {
	type plain Step // without this method
	return json.Marshal(struct {
		plain
		Timeout string `json:"timeout"`
	}{plain(s), s.Timeout.String()})
}

// MarshalJSON encodes the SLA with its durations as strings; a zero
// duration (no target) is left out.
func (s SLA) MarshalJSON() ([]byte, error) {
	type plain SLA
	dur := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return d.String()
	}
	return json.Marshal(struct {
		plain
		MaxNodeDuration    string `json:"max_node_duration,omitempty"`
		MaxRolloutDuration string `json:"max_rollout_duration,omitempty"`
	}{plain(s), dur(s.MaxNodeDuration), dur(s.MaxRolloutDuration)})
}
