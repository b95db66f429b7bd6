package api_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/auth/authtest"
	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// TestSeparationThroughTokens: an admin who authored a release cannot
// approve (or test) it through a token they created for someone else,
// through a user they created, or through a token created with a token
// they issued; the approver's own token works, and the audit log names
// the issuer of every token that acted for someone else.
func TestSeparationThroughTokens(t *testing.T) {
	e := newReleaseEnv(t)
	users := controllerv1.NewUsersClient(e.conn)
	// root is the first admin (init's token, issued by nobody). It
	// creates the people, and their own tokens.
	root := authtest.WithToken(context.Background(), authtest.AddUser(t, e.st, "root", auth.RoleAdmin))
	as := func(token string) context.Context { return authtest.WithToken(context.Background(), token) }
	token := func(by context.Context, user string) string {
		t.Helper()
		resp, err := users.CreateToken(by, &controllerv1.CreateTokenRequest{User: user})
		if err != nil {
			t.Fatalf("CreateToken for %s: %v", user, err)
		}
		return resp.GetToken()
	}
	own := map[string]context.Context{}
	for user, role := range map[string]string{
		"admin1": auth.RoleAdmin, "ap2": auth.RoleApprover, "ap3": auth.RoleApprover, "t1": auth.RoleTester, "rm2": auth.RoleReleaseManager,
	} {
		if _, err := users.CreateUser(root, &controllerv1.CreateUserRequest{Name: user, Roles: []string{role}}); err != nil {
			t.Fatal(err)
		}
		own[user] = as(token(root, user))
	}

	// admin1 authors and seals 1.0.0; t1 tests it with t1's own token.
	must(t)(e.create("rm", "1.0.0", 2)) // another release, so the store holds more than one
	e.ctx["admin1"] = own["admin1"]
	must(t)(e.create("admin1", "3.0.0", 1))
	must(t)(e.rel.SealRelease(own["admin1"], rref("3.0.0")))
	// A tester's token that admin1 created makes the test admin1's.
	t1ByAdmin1 := as(token(own["admin1"], "t1"))
	e.refused(t, "test through a token the author issued", codes.PermissionDenied,
		"admin1, the release's author, issued the token t1 acted with: a step through it counts as admin1's, and the release's author cannot test it", func() error {
			_, err := e.rel.RecordTest(t1ByAdmin1, &controllerv1.RecordTestRequest{Release: rref("3.0.0"), Result: "pass"})
			return err
		})
	must(t)(e.rel.RecordTest(own["t1"], &controllerv1.RecordTestRequest{Release: rref("3.0.0"), Result: "pass", Note: "suite green"}))

	decide := func(ctx context.Context) error {
		_, err := e.rel.ApproveRelease(ctx, &controllerv1.DecisionRequest{Release: rref("3.0.0"), Note: "CAB"})
		return err
	}
	// The review's case: admin1 runs `cairnctl token create --user ap2`.
	ap2ByAdmin1 := as(token(own["admin1"], "ap2"))
	e.refused(t, "approve through a token the author issued", codes.PermissionDenied,
		"admin1, the release's author, issued the token ap2 acted with: a step through it counts as admin1's, and the release's author cannot approve it",
		func() error { return decide(ap2ByAdmin1) })
	// A user admin1 creates for themselves, with a token root issues.
	if _, err := users.CreateUser(own["admin1"], &controllerv1.CreateUserRequest{Name: "shadow", Roles: []string{auth.RoleApprover}}); err != nil {
		t.Fatal(err)
	}
	shadow := as(token(root, "shadow"))
	e.refused(t, "approve as a user the author created", codes.PermissionDenied,
		"admin1, the release's author, created the user shadow",
		func() error { return decide(shadow) })
	// A second admin admin1 creates, then a token that admin makes.
	if _, err := users.CreateUser(own["admin1"], &controllerv1.CreateUserRequest{Name: "admin9", Roles: []string{auth.RoleAdmin}}); err != nil {
		t.Fatal(err)
	}
	ap3ByAdmin9 := as(token(as(token(own["admin1"], "admin9")), "ap3"))
	e.refused(t, "approve through a token issued with a token the author issued", codes.PermissionDenied,
		"admin1, the release's author, issued, through admin9, the token ap3 acted with",
		func() error { return decide(ap3ByAdmin9) })

	// ap2's own token (root issued it) works, and says so in the log.
	rec := must(t)(e.rel.ApproveRelease(own["ap2"], &controllerv1.DecisionRequest{Release: rref("3.0.0"), Note: "CAB"}))
	if rec.GetState() != controllerv1.ReleaseRecord_STATE_APPROVED || rec.GetDecisions()[0].GetBy() != "user:ap2 (token issued by root)" {
		t.Fatalf("approved: %v by %q", rec.GetState(), rec.GetDecisions()[0].GetBy())
	}
	var approve, delegated *controllerv1.AuditLogEntry
	if err := e.st.View(t.Context(), func(tx store.Tx) error {
		log, err := tx.LogEntries(0, 0)
		for _, en := range log {
			switch {
			case en.GetAction() == "release.approve":
				approve = en
			case en.GetAction() == "token.create" && en.GetObject() == "user/ap2" && en.GetActor() == "user:admin1 (token issued by root)":
				delegated = en
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if approve.GetActor() != "user:ap2 (token issued by root)" {
		t.Errorf("release.approve actor = %q, want the approver and the token's issuer", approve.GetActor())
	}
	if delegated.GetDetails()["issuers"] != "admin1,root" {
		t.Errorf("token.create of admin1's token for ap2: details %v, want issuers admin1,root", delegated.GetDetails())
	}
}

// TestSeparationAuthorThroughToken: the other way round. A release
// created through a token admin1 issued to rm2 counts as admin1's too,
// so admin1 cannot approve it with their own token; and an approver
// cannot count twice through a token they issued.
func TestSeparationAuthorThroughToken(t *testing.T) {
	e := newReleaseEnv(t)
	users := controllerv1.NewUsersClient(e.conn)
	root := authtest.WithToken(context.Background(), authtest.AddUser(t, e.st, "root", auth.RoleAdmin))
	as := func(by context.Context, user string) context.Context {
		t.Helper()
		resp, err := users.CreateToken(by, &controllerv1.CreateTokenRequest{User: user})
		if err != nil {
			t.Fatal(err)
		}
		return authtest.WithToken(context.Background(), resp.GetToken())
	}
	for user, role := range map[string]string{"admin1": auth.RoleAdmin, "admin2": auth.RoleAdmin, "rm2": auth.RoleReleaseManager, "ap4": auth.RoleApprover} {
		if _, err := users.CreateUser(root, &controllerv1.CreateUserRequest{Name: user, Roles: []string{role}}); err != nil {
			t.Fatal(err)
		}
	}
	admin1, admin2 := as(root, "admin1"), as(root, "admin2")
	e.ctx["rm2-by-admin1"] = as(admin1, "rm2")
	must(t)(e.create("rm2-by-admin1", "4.0.0", 2))
	must(t)(e.rel.SealRelease(e.ctx["rm2-by-admin1"], rref("4.0.0")))
	must(t)(e.test("tester", "4.0.0", "pass"))
	e.refused(t, "the issuer of the author's token approves", codes.PermissionDenied,
		"admin1 issued the token rm2 acted with as the release's author, so admin1 counts as the release's author and cannot approve it", func() error {
			_, err := e.rel.ApproveRelease(admin1, &controllerv1.DecisionRequest{Release: rref("4.0.0")})
			return err
		})
	must(t)(e.rel.ApproveRelease(admin2, &controllerv1.DecisionRequest{Release: rref("4.0.0")}))
	ap4ByAdmin2 := as(admin2, "ap4")
	e.refused(t, "a second approval through a token the first approver issued", codes.FailedPrecondition,
		"admin2, an approver who has already approved it, issued the token ap4 acted with", func() error {
			_, err := e.rel.ApproveRelease(ap4ByAdmin2, &controllerv1.DecisionRequest{Release: rref("4.0.0")})
			return err
		})
	rec := must(t)(e.rel.ApproveRelease(as(root, "ap4"), &controllerv1.DecisionRequest{Release: rref("4.0.0")}))
	if rec.GetState() != controllerv1.ReleaseRecord_STATE_APPROVED || !strings.HasPrefix(rec.GetCreatedBy(), "user:rm2 (token issued by admin1") {
		t.Errorf("after two distinct approvers: %v, created by %q", rec.GetState(), rec.GetCreatedBy())
	}
}
