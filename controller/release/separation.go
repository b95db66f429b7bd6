package release

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// party is everyone who may have taken one step of a release's
// lifecycle, read from the actor string the step was recorded with
// (auth.Principal.Actor): the user who acted (holder), the users who
// issued the token they acted with, and the user who created the holder
// with that creator's own token issuers (one hop). Someone who issued a
// token, or created a user, could have acted through it; separation of
// duties therefore compares parties, not just names.
type party struct {
	holder string
	// how maps each other member to how they could have acted, e.g.
	// "issued the token rm1 acted with".
	how map[string]string
}

// holder is the user an actor string names, or the whole string for an
// actor that is not a user.
func holder(actor string) string {
	if u, _ := auth.ParseActor(actor); u != "" {
		return u
	}
	return actor
}

// partyOf reads actor's party; tx supplies the holder's user record.
func partyOf(tx store.Tx, actor string) (party, error) {
	user, issuers := auth.ParseActor(actor)
	if user == "" {
		return party{holder: actor}, nil
	}
	p := party{holder: user, how: map[string]string{}}
	add := func(u, how string) {
		if _, ok := p.how[u]; !ok && u != "" && u != user {
			p.how[u] = how
		}
	}
	for i, u := range issuers {
		if i == 0 {
			add(u, "issued the token "+user+" acted with")
		} else {
			add(u, "issued, through "+strings.Join(issuers[:i], " and ")+", the token "+user+" acted with")
		}
	}
	rec, err := tx.User(user)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return p, nil
	case err != nil:
		return party{}, fmt.Errorf("separation of duties: user %s: %w", user, err)
	}
	creator, creatorIssuers := auth.ParseActor(rec.GetCreatedBy())
	add(creator, "created the user "+user)
	for _, u := range creatorIssuers {
		add(u, "issued the token that created the user "+user)
	}
	return p, nil
}

// overlap says why the same person may have acted as both prev, who took
// an earlier step as role ("the release's author"), and next, who wants
// to do what ("approve"); "" when they are distinct. Each side's direct
// actor is compared with the other's whole party; two parties that
// share only an issuer are distinct (every token comes from some
// admin, and the trace in the audit log names them).
func overlap(role, what string, prev, next party) string {
	switch {
	case next.holder == prev.holder:
		return fmt.Sprintf("%s cannot %s it", role, what)
	case prev.how[next.holder] != "":
		return fmt.Sprintf("%s %s as %s, so %s counts as %s and cannot %s it",
			next.holder, prev.how[next.holder], role, next.holder, role, what)
	case next.how[prev.holder] != "":
		return fmt.Sprintf("%s, %s, %s: a step through it counts as %s's, and %s cannot %s it",
			prev.holder, role, next.how[prev.holder], prev.holder, role, what)
	}
	return ""
}

// separate checks that actor may do what ("test", "approve", "reject")
// to rec: nobody in their party authored or sealed it, or already decided
// on its digest (a release that needs more approvals is tested again
// after the first), and for a decision (decision true) tested it.
func separate(tx store.Tx, rec *controllerv1.ReleaseRecord, actor, what string, decision bool) error {
	next, err := partyOf(tx, actor)
	if err != nil {
		return err
	}
	type step struct{ role, actor string }
	steps := []step{{"the release's author", rec.GetCreatedBy()}, {"the release's sealer", rec.GetSealedBy()}}
	if decision {
		for _, t := range rec.GetTests() {
			steps = append(steps, step{"a tester of the release", t.GetTester()})
		}
	}
	for _, s := range steps {
		if s.actor == "" {
			continue
		}
		prev, err := partyOf(tx, s.actor)
		if err != nil {
			return err
		}
		if why := overlap(s.role, what, prev, next); why != "" {
			return fmt.Errorf("%w: %s", ErrSeparation, why)
		}
	}
	for _, d := range rec.GetDecisions() {
		if d.GetReleaseDigest() != rec.GetDigest() {
			continue
		}
		prev, err := partyOf(tx, d.GetBy())
		if err != nil {
			return err
		}
		if !decision {
			if why := overlap("an approver who has already "+d.GetDecision()+"d it", what, prev, next); why != "" {
				return fmt.Errorf("%w: %s", ErrSeparation, why)
			}
			continue
		}
		if prev.holder == next.holder {
			return fmt.Errorf("%w: %s has already %sd %s; an approver counts once", ErrAlreadyDecided, next.holder, d.GetDecision(), refString(rec))
		}
		if why := overlap("an approver who has already "+d.GetDecision()+"d it", what, prev, next); why != "" {
			return fmt.Errorf("%w: %s; an approver counts once", ErrAlreadyDecided, why)
		}
	}
	return nil
}
