package refusal_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/internal/refusal"
)

func TestOf(t *testing.T) {
	foreign, err := status.New(codes.PermissionDenied, "node n-1 is revoked").WithDetails(&errdetails.ErrorInfo{Reason: "NODE_REVOKED", Domain: "example.com"})
	if err != nil {
		t.Fatal(err)
	}
	revoked := refusal.Error(codes.PermissionDenied, refusal.NodeRevoked, map[string]string{"node_id": "n-1"}, "node n-1 was taken out of service")
	for _, tc := range []struct {
		name string
		err  error
		want refusal.Reason
		meta map[string]string
	}{
		{name: "nil", err: nil},
		{name: "plain error", err: errors.New("node n-1 is revoked")},
		{name: "status without details, whatever its text", err: status.Error(codes.PermissionDenied, "node n-1 is revoked")},
		{name: "ErrorInfo of another domain", err: foreign.Err()},
		{name: "reason, whatever the text", err: revoked, want: refusal.NodeRevoked, meta: map[string]string{"node_id": "n-1"}},
		{name: "wrapped", err: fmt.Errorf("session: %w", revoked), want: refusal.NodeRevoked, meta: map[string]string{"node_id": "n-1"}},
		{name: "Errorf", err: refusal.Errorf(codes.Unauthenticated, refusal.TokenRevoked, "token %s was revoked", "tok_1"), want: refusal.TokenRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := refusal.Of(tc.err); got != tc.want {
				t.Errorf("Of = %q, want %q", got, tc.want)
			}
			if diff := cmp.Diff(tc.meta, refusal.Metadata(tc.err)); diff != "" {
				t.Errorf("Metadata (-want +got):\n%s", diff)
			}
		})
	}
	if st := status.Convert(revoked); st.Code() != codes.PermissionDenied || st.Message() != "node n-1 was taken out of service" {
		t.Errorf("status = %v %q, want the code and message given", st.Code(), st.Message())
	}
}
