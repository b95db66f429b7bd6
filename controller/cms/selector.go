package cms

import (
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Matches reports whether labels has every key=value pair of selector. An
// empty selector matches everything.
func Matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Select returns the nodes whose labels match selector, in their order.
// Revoked nodes are included only when withRevoked is set.
func Select(nodes []*controllerv1.NodeRecord, selector map[string]string, withRevoked bool) []*controllerv1.NodeRecord {
	var out []*controllerv1.NodeRecord
	for _, n := range nodes {
		if !withRevoked && n.GetState() == controllerv1.NodeRecord_STATE_REVOKED {
			continue
		}
		if Matches(selector, n.GetLabels()) {
			out = append(out, n)
		}
	}
	return out
}
