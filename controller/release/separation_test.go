package release_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairn-ops/cairn/controller/release"
	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// TestSeparationParties: separation of duties compares parties — the user
// who acted, the issuers of their token (from the actor string), the
// user who created them — so that nobody tests or approves their own
// release through someone else's name. Users who merely share an issuer
// (every token comes from some admin) are distinct.
func TestSeparationParties(t *testing.T) {
	for _, tc := range []struct {
		name           string
		author, tester string
		approvers      []string
		// want is the error of the last step; says a part of its message.
		want error
		says string
	}{
		{name: "distinct users with the same issuer", author: "user:rm (token issued by root)", tester: "user:qa (token issued by root)",
			approvers: []string{"user:boss (token issued by root)"}},
		{name: "approve through a token the author issued", author: "user:admin1", tester: "user:qa",
			approvers: []string{"user:boss (token issued by admin1)"}, want: release.ErrSeparation,
			says: "admin1, the release's author, issued the token boss acted with"},
		{name: "approve through a token issued with one the author issued", author: "user:admin1", tester: "user:qa",
			approvers: []string{"user:boss (token issued by admin9 via admin1 via root)"}, want: release.ErrSeparation,
			says: "admin1, the release's author, issued, through admin9, the token boss acted with"},
		{name: "the issuer of the author's token approves", author: "user:rm (token issued by admin1)", tester: "user:qa",
			approvers: []string{"user:admin1"}, want: release.ErrSeparation,
			says: "admin1 issued the token rm acted with as the release's author, so admin1 counts as the release's author and cannot approve it"},
		{name: "test through a token the author issued", author: "user:admin1", tester: "user:qa (token issued by admin1)",
			want: release.ErrSeparation, says: "the release's author cannot test it"},
		{name: "approve as a user the author created", author: "user:admin1", tester: "user:qa",
			approvers: []string{"user:puppet (token issued by root)"}, want: release.ErrSeparation,
			says: "admin1, the release's author, created the user puppet"},
		{name: "approve through a token the tester issued", author: "user:rm", tester: "user:admin2",
			approvers: []string{"user:boss (token issued by admin2)"}, want: release.ErrSeparation,
			says: "admin2, a tester of the release, issued the token boss acted with"},
		{name: "the same approver with another token", author: "user:rm", tester: "user:qa",
			approvers: []string{"user:boss (token issued by root)", "user:boss"}, want: release.ErrAlreadyDecided,
			says: "boss has already approved webshop@1.0.0; an approver counts once"},
		{name: "a second approval through a token the first approver issued", author: "user:rm", tester: "user:qa",
			approvers: []string{"user:admin2", "user:boss (token issued by admin2)"}, want: release.ErrAlreadyDecided,
			says: "admin2, an approver who has already approved it, issued the token boss acted with"},
		{name: "two approvers whose tokens one admin issued", author: "user:rm", tester: "user:qa",
			approvers: []string{"user:boss (token issued by root)", "user:ap2 (token issued by root)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, store.NewMemory())
			if err := e.st.Update(t.Context(), func(tx store.Tx) error {
				return tx.PutUser(&controllerv1.UserRecord{Name: "puppet", Roles: []string{"approver"}, CreatedBy: "user:admin1 (token issued by root)"})
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.create(t, tc.author, "1.0.0", 2); err != nil {
				t.Fatal(err)
			}
			e.must(t, seal(tc.author))
			steps := []step{test(tc.tester, release.ResultPass)}
			for _, a := range tc.approvers {
				steps = append(steps, approve(a))
			}
			var err error
			for i, s := range steps {
				if _, err = e.run(t, s); err != nil && i < len(steps)-1 {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("last step: %v, want nil", err)
			case tc.want != nil && (!errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says)):
				t.Errorf("last step: %v\nwant %v saying %q", err, tc.want, tc.says)
			}
		})
	}
}

// TestSeparationTestAfterDecision: a release that needs two approvals
// stays TESTED, and can be tested again, after the first: who approved it
// (or whoever acts through a token they issued) cannot then test it too,
// or one person would be its approver and its tester.
func TestSeparationTestAfterDecision(t *testing.T) {
	for _, tc := range []struct {
		name, tester string
		want         error
		says         string
	}{
		{name: "the approver tests", tester: "user:boss", want: release.ErrSeparation,
			says: "an approver who has already approved it cannot test it"},
		{name: "through a token the approver issued", tester: "user:qa2 (token issued by boss)", want: release.ErrSeparation,
			says: "boss, an approver who has already approved it, issued the token qa2 acted with"},
		{name: "another tester", tester: "user:qa2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, store.NewMemory())
			if _, err := e.create(t, "user:rm", "1.0.0", 2); err != nil {
				t.Fatal(err)
			}
			e.must(t, seal("user:rm"), test("user:qa", release.ResultPass), approve("user:boss"))
			_, err := e.run(t, test(tc.tester, release.ResultPass))
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("test: %v, want nil", err)
			case tc.want != nil && (!errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says)):
				t.Errorf("test: %v\nwant %v saying %q", err, tc.want, tc.says)
			}
		})
	}
}
