package api_test

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/controller/api"
	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/auth/authtest"
	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/dml"
	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// TestInputLimits sends every operator method a string (or list) past
// its limit (internal/limits). Each is refused with InvalidArgument
// naming the field — never "internal error", which is what a release
// name over bbolt's 32 KiB key limit used to get — and nothing is
// stored. The store is a real bbolt file, whose key limit the memory
// store does not have.
func TestInputLimits(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "cairn.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lib, err := dml.New(st, blobs, dml.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	eng := newFakeEngine()
	srv := authtest.Start(t, st, func(s *grpc.Server) {
		api.Register(s, api.Deps{Store: st, Blobs: blobs, DML: lib, Rollouts: eng, ReleaseKeys: oneKey(key),
			Now: func() time.Time { return now }})
	})
	conn := srv.Dial(t, nil)
	ctx := authtest.WithToken(context.Background(), authtest.AddUser(t, st, "admin1", auth.RoleAdmin))
	authtest.AddNode(t, st, &controllerv1.NodeRecord{Id: "n1", Hostname: "web1", State: controllerv1.NodeRecord_STATE_CONNECTED})

	long := func(n int) string { return strings.Repeat("a", n) }
	manifest := func(name, version string) []byte {
		return []byte("apiVersion: cairn/v1\nkind: Release\nname: " + name + "\nversion: " + version + "\n")
	}
	ref := &controllerv1.ReleaseRef{Name: "webshop", Version: "1.0.0"}
	digest := strings.Repeat("0", 64)
	var (
		nodes    = controllerv1.NewNodesClient(conn)
		audits   = controllerv1.NewAuditsClient(conn)
		cms      = controllerv1.NewCMSClient(conn)
		services = controllerv1.NewServicesClient(conn)
		users    = controllerv1.NewUsersClient(conn)
		rels     = controllerv1.NewReleasesClient(conn)
		kes      = controllerv1.NewKnownErrorsClient(conn)
		arts     = controllerv1.NewArtifactsClient(conn)
		ros      = controllerv1.NewRolloutsClient(conn)
		enroll   = controllerv1.NewEnrollTokensClient(conn)
	)
	manyLabels := map[string]string{}
	for i := range 65 {
		manyLabels["k"+strings.Repeat("x", i)] = "v"
	}
	tests := []struct {
		name string
		// says is a part of the message: the field and the limit.
		says string
		call func() error
	}{
		{"release name 40 KB", "name: ", func() error {
			_, err := rels.CreateRelease(ctx, &controllerv1.CreateReleaseRequest{ManifestYaml: manifest(long(40<<10), "1.0.0")})
			return err
		}},
		{"release version 100 KB", "version: ", func() error {
			_, err := rels.CreateRelease(ctx, &controllerv1.CreateReleaseRequest{ManifestYaml: manifest("webshop", "1.0.0-"+long(100<<10))})
			return err
		}},
		{"manifest file name", "filename: ", func() error {
			_, err := rels.CreateRelease(ctx, &controllerv1.CreateReleaseRequest{ManifestYaml: manifest("w", "1.0.0"), Filename: long(2000)})
			return err
		}},
		{"component digest key", "component_digests: ", func() error {
			_, err := rels.CreateRelease(ctx, &controllerv1.CreateReleaseRequest{ManifestYaml: manifest("w", "1.0.0"), ComponentDigests: map[string]string{long(64): digest}})
			return err
		}},
		{"component digest value", "component_digests[site]: ", func() error {
			_, err := rels.CreateRelease(ctx, &controllerv1.CreateReleaseRequest{ManifestYaml: manifest("w", "1.0.0"), ComponentDigests: map[string]string{"site": strings.Repeat("z", 64)}})
			return err
		}},
		{"release ref name", "release.name: ", func() error {
			_, err := rels.GetRelease(ctx, &controllerv1.ReleaseRef{Name: long(40 << 10), Version: "1.0.0"})
			return err
		}},
		{"release ref version", "release.version: ", func() error {
			_, err := rels.SealRelease(ctx, &controllerv1.ReleaseRef{Name: "w", Version: long(200)})
			return err
		}},
		{"test note", "note: ", func() error {
			_, err := rels.RecordTest(ctx, &controllerv1.RecordTestRequest{Release: ref, Result: "pass", Note: long(5000)})
			return err
		}},
		{"test evidence", "evidence[0]: ", func() error {
			_, err := rels.RecordTest(ctx, &controllerv1.RecordTestRequest{Release: ref, Result: "pass", Evidence: []string{long(100)}})
			return err
		}},
		{"decision note", "note: ", func() error {
			_, err := rels.ApproveRelease(ctx, &controllerv1.DecisionRequest{Release: ref, Note: "ok\x00" + long(10)})
			return err
		}},
		{"list releases filter", "name: ", func() error {
			_, err := rels.ListReleases(ctx, &controllerv1.ListReleasesRequest{Name: long(100)})
			return err
		}},
		{"known errors filter", "release: ", func() error {
			_, err := kes.ListKnownErrors(ctx, &controllerv1.ListKnownErrorsRequest{Release: "w@" + long(200)})
			return err
		}},
		{"render format", "format: ", func() error {
			_, err := rels.ReleaseNotes(ctx, &controllerv1.RenderRequest{Release: ref, Format: long(300)})
			return err
		}},
		{"node reference", "node: ", func() error {
			_, err := nodes.GetNode(ctx, &controllerv1.GetNodeRequest{Node: long(300)})
			return err
		}},
		{"revoke reason", "reason: ", func() error {
			_, err := nodes.RevokeNode(ctx, &controllerv1.RevokeNodeRequest{Node: "n1", Reason: long(5000)})
			return err
		}},
		{"too many labels", "set: 65 labels; the limit is 64", func() error {
			_, err := nodes.LabelNode(ctx, &controllerv1.LabelNodeRequest{Node: "n1", Set: manyLabels})
			return err
		}},
		{"label value", "set: label k: value ", func() error {
			_, err := nodes.LabelNode(ctx, &controllerv1.LabelNodeRequest{Node: "n1", Set: map[string]string{"k": long(254)}})
			return err
		}},
		{"enroll token labels", "labels: label key ", func() error {
			_, err := enroll.CreateEnrollToken(ctx, &controllerv1.CreateEnrollTokenRequest{Labels: map[string]string{long(64): "v"}})
			return err
		}},
		{"audit collectors", "collectors[0]: ", func() error {
			_, err := audits.RunAudit(ctx, &controllerv1.RunAuditRequest{Node: "n1", Collectors: []string{long(300)}})
			return err
		}},
		{"audit track", "track[0]: ", func() error {
			_, err := audits.RunAudit(ctx, &controllerv1.RunAuditRequest{Node: "n1", Track: []string{"/" + long(5000)}})
			return err
		}},
		{"command ID", "id: ", func() error {
			_, err := audits.GetCommand(ctx, &controllerv1.GetCommandRequest{Id: long(200)})
			return err
		}},
		{"baseline reason", "reason: ", func() error {
			_, err := cms.AcceptBaseline(ctx, &controllerv1.AcceptBaselineRequest{Node: "n1", Reason: long(5000)})
			return err
		}},
		{"drift service", "service: ", func() error {
			_, err := cms.Drift(ctx, &controllerv1.DriftRequest{Service: long(64)})
			return err
		}},
		{"import service description", "services[0].description: ", func() error {
			_, err := cms.Import(ctx, &controllerv1.ImportRequest{Services: []*controllerv1.ServiceRecord{{Name: "web", Selector: map[string]string{"a": "b"}, Description: long(5000)}}})
			return err
		}},
		{"service name", "name: ", func() error {
			_, err := services.CreateService(ctx, &controllerv1.CreateServiceRequest{Name: long(64), Selector: map[string]string{"a": "b"}})
			return err
		}},
		{"service description", "description: ", func() error {
			_, err := services.CreateService(ctx, &controllerv1.CreateServiceRequest{Name: "web", Selector: map[string]string{"a": "b"}, Description: long(5000)})
			return err
		}},
		{"user name", "name: ", func() error {
			_, err := users.CreateUser(ctx, &controllerv1.CreateUserRequest{Name: long(64), Roles: []string{"tester"}})
			return err
		}},
		{"token user", "user: ", func() error {
			_, err := users.CreateToken(ctx, &controllerv1.CreateTokenRequest{User: long(40 << 10)})
			return err
		}},
		{"artifact name filter", "name: ", func() error {
			_, err := arts.ListArtifacts(ctx, &controllerv1.ListArtifactsRequest{Name: long(300)})
			return err
		}},
		{"rollout spec service", "service: ", func() error {
			_, err := ros.PlanRollout(ctx, &controllerv1.RolloutSpec{Release: ref, Service: long(64)})
			return err
		}},
		{"rollout spec waves", "waves: 101 waves; the limit is 100", func() error {
			_, err := ros.StartRollout(ctx, &controllerv1.RolloutSpec{Release: ref, Waves: make([]string, 101)})
			return err
		}},
		{"rollout spec window", "window: ", func() error {
			_, err := ros.StartRollout(ctx, &controllerv1.RolloutSpec{Release: ref, Window: long(300)})
			return err
		}},
		{"rollout ID", "id: ", func() error {
			_, err := ros.GetRollout(ctx, &controllerv1.RolloutRef{Id: long(200)})
			return err
		}},
		{"rollout action note", "note: ", func() error {
			_, err := ros.PauseRollout(ctx, &controllerv1.RolloutAction{Id: "ro-1", Note: long(5000)})
			return err
		}},
		{"confirm step", "step: ", func() error {
			_, err := ros.ConfirmStep(ctx, &controllerv1.ConfirmStepRequest{Id: "ro-1", Node: "n1", Step: long(64), Note: "done"})
			return err
		}},
		{"list rollouts filter", "release: ", func() error {
			_, err := ros.ListRollouts(ctx, &controllerv1.ListRolloutsRequest{Release: long(100)})
			return err
		}},
	}
	dump := func() []proto.Message {
		t.Helper()
		var out []proto.Message
		if err := st.View(t.Context(), func(tx store.Tx) error {
			for _, get := range []func() ([]proto.Message, error){
				func() ([]proto.Message, error) { r, err := tx.Releases(); return msgs(r), err },
				func() ([]proto.Message, error) { r, err := tx.Nodes(); return msgs(r), err },
				func() ([]proto.Message, error) { r, err := tx.Services(); return msgs(r), err },
				func() ([]proto.Message, error) { r, err := tx.Users(); return msgs(r), err },
				func() ([]proto.Message, error) { r, err := tx.LogEntries(0, 0); return msgs(r), err },
			} {
				m, err := get()
				if err != nil {
					return err
				}
				out = append(out, m...)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := dump()
			err := tc.call()
			checkCode(t, err, codes.InvalidArgument, tc.says)
			if msg := status.Convert(err).Message(); len(msg) > 600 {
				t.Errorf("the message is %d bytes: a long value must not be echoed whole", len(msg))
			}
			if diff := cmp.Diff(before, dump(), protocmp.Transform()); diff != "" {
				t.Errorf("store changed by a refused call (-before +after):\n%s", diff)
			}
		})
	}
	if calls := eng.takeCalls(); len(calls) != 0 {
		t.Errorf("refused calls reached the rollout engine: %v", calls)
	}
}

// msgs turns a slice of records into proto messages.
func msgs[M proto.Message](in []M) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}
