// Package refusal says why the controller refused a caller in a form a
// program can act on: a reason code carried in the gRPC status's details
// (google.rpc.ErrorInfo, domain Domain) next to the human message. The
// controller attaches a reason to every refusal of an identity (a revoked
// node, a certificate from a retired CA, a revoked or expired token, a
// disabled user); the agent and cairnctl decide on the reason (Of), never
// on the message's text, which stays free to change.
package refusal

import (
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Domain is the ErrorInfo domain of Cairn's reasons: a reason from
// another domain is not one of these.
const Domain = "cairn.controller"

// Reason is why the controller refused an identity.
type Reason string

// Reasons. They are an interface between the controller, agents and
// cairnctl of different versions: add new ones, never change one.
const (
	// NodeRevoked: an operator revoked the node (cairnctl node revoke).
	// The agent stops and must enroll again.
	NodeRevoked Reason = "NODE_REVOKED"
	// NodeUnknown: the certificate names a node this controller does not
	// know.
	NodeUnknown Reason = "NODE_UNKNOWN"
	// CertificateRetired: the client certificate was issued by a CA whose
	// rotation overlap has ended (cairn-controller rotate ca).
	CertificateRetired Reason = "CERTIFICATE_RETIRED"
	// TokenMissing: the call carried no bearer token, or a malformed one.
	TokenMissing Reason = "TOKEN_MISSING"
	// TokenUnknown: the bearer token is not one this controller issued.
	TokenUnknown Reason = "TOKEN_UNKNOWN"
	// TokenExpired: the bearer token's expiry has passed.
	TokenExpired Reason = "TOKEN_EXPIRED"
	// TokenRevoked: an admin revoked the token (cairnctl token revoke).
	TokenRevoked Reason = "TOKEN_REVOKED"
	// UserDisabled: an admin disabled the token's user (cairnctl user
	// disable).
	UserDisabled Reason = "USER_DISABLED"
	// UserUnknown: the token's user no longer exists.
	UserUnknown Reason = "USER_UNKNOWN"
)

// Error returns a status error with code and msg that carries reason and
// metadata (for example the token's ID) in an ErrorInfo.
func Error(code codes.Code, reason Reason, metadata map[string]string, msg string) error {
	st := status.New(code, msg)
	withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: string(reason), Domain: Domain, Metadata: metadata})
	if err != nil {
		// Only a detail that cannot be marshalled fails, and ErrorInfo
		// always can: keep the status without it rather than lose it.
		return st.Err()
	}
	return withInfo.Err()
}

// Errorf is Error with a formatted message and no metadata.
func Errorf(code codes.Code, reason Reason, format string, args ...any) error {
	return Error(code, reason, nil, fmt.Sprintf(format, args...))
}

// Of returns the reason a status error carries, or "" when err is not a
// gRPC status or carries no ErrorInfo of Domain. It looks through
// wrapping (fmt.Errorf("...: %w", err)).
func Of(err error) Reason {
	info := infoOf(err)
	if info == nil {
		return ""
	}
	return Reason(info.GetReason())
}

// Metadata returns the metadata of err's ErrorInfo of Domain (nil when
// there is none).
func Metadata(err error) map[string]string {
	return infoOf(err).GetMetadata()
}

func infoOf(err error) *errdetails.ErrorInfo {
	if err == nil {
		return nil
	}
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return nil
	}
	for _, d := range se.GRPCStatus().Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == Domain {
			return info
		}
	}
	return nil
}
