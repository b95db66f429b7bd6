package ctl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairn-ops/cairn/internal/atomicfile"
	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/internal/readlimit"
	"github.com/cairn-ops/cairn/plugins/catalog"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// releaseRefHelp is how a release is named on the command line.
const releaseRefHelp = "NAME@VERSION, e.g. webshop@1.0.0"

// parseReleaseRef splits NAME@VERSION.
func parseReleaseRef(s string) (*controllerv1.ReleaseRef, error) {
	name, version, ok := strings.Cut(s, "@")
	if !ok || name == "" || version == "" || strings.Contains(version, "@") {
		return nil, usageErrorf("%q is not a release: want %s", s, releaseRefHelp)
	}
	return &controllerv1.ReleaseRef{Name: name, Version: version}, nil
}

func refString(r *controllerv1.ReleaseRef) string { return r.GetName() + "@" + r.GetVersion() }

// releaseArg is the one NAME@VERSION argument of a release command.
func releaseArg(cmd *cobra.Command, args []string) error {
	if err := exactArgs("NAME@VERSION")(cmd, args); err != nil {
		return err
	}
	_, err := parseReleaseRef(args[0])
	return err
}

// releaseCommands are the lifecycle subcommands of release.
func (a *app) releaseCommands() []*cobra.Command {
	return []*cobra.Command{
		a.newReleaseCreateCommand(),
		a.newReleaseSealCommand(),
		group("test", "Record test results of a sealed release",
			`A tester records whether a sealed release passed its tests, with evidence
files. The author of a release cannot record its test result.`,
			`  cairnctl release test record webshop@1.0.0 --result pass --evidence report.pdf --note "all green"`,
			a.newReleaseTestRecordCommand()),
		a.newReleaseDecisionCommand("approve"),
		a.newReleaseDecisionCommand("reject"),
		a.newReleaseShowCommand(),
		a.newReleaseListCommand(),
		a.newReleaseVerifyCommand(),
		a.newReleaseRenderCommand("notes"),
		a.newReleaseRenderCommand("dossier"),
	}
}

// pushFile uploads the file at path into the DML as name and kind,
// resuming a broken stream, and returns its record.
func (a *app) pushFile(ctx context.Context, path, name, kind string) (*controllerv1.ArtifactRecord, error) {
	f, err := readlimit.Open(path)
	if err != nil {
		return nil, usageError(fmt.Errorf("artifact push: %w", err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, usageError(fmt.Errorf("artifact push: %w", err))
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, failedf("artifact push: read %s: %w", path, err)
	}
	cc, err := a.conn()
	if err != nil {
		return nil, err
	}
	p := &pusher{
		a:      a,
		client: controllerv1.NewArtifactsClient(cc),
		file:   f,
		header: &controllerv1.PushHeader{
			Name: name, Kind: kind, SizeBytes: info.Size(), Sha256: hex.EncodeToString(h.Sum(nil)),
		},
		progress: newProgress(a.rawErr, info.Size()),
	}
	return p.push(ctx, "")
}

func (a *app) newReleaseCreateCommand() *cobra.Command {
	var file, artifacts, plugins string
	cmd := &cobra.Command{
		Use:   "create -f FILE [--artifacts DIR] [--plugins DIR]",
		Short: "Upload a release's artifacts to the DML and store it as a draft",
		Long: `Create checks the manifest as 'release validate' does, pushes the file of
every component given by path to the DML (resumably; content the DML
already holds is not stored again), and stores the release as a draft
with the components' digests; 'release seal' freezes it. NAME@VERSION
is created once: a changed release needs a new version.

Nothing is uploaded when the manifest is invalid (every problem by line
and field, exit 2), when you may not create releases (exit 3), or when
the release exists (exit 1): the controller is asked first.`,
		Example: `  cairnctl release create -f release.yaml
  cairnctl release create -f release.yaml --artifacts build/out`,
		Args: noArgs,
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the release manifest (required)")
	cmd.Flags().StringVar(&artifacts, "artifacts", "", "directory component paths are relative to (default: the manifest's)")
	cmd.Flags().StringVar(&plugins, "plugins", "", "plugin catalog directory (catalog.yaml) naming external plugins")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if file == "" {
			return usageErrorf("-f FILE is required: the release manifest to create")
		}
		var cat *catalog.Catalog
		if plugins != "" {
			var err error
			if cat, err = catalog.Load(plugins); err != nil {
				return usageError(err)
			}
		}
		data, err := manifest.ReadFile(file)
		if err != nil {
			return usageError(err)
		}
		v := validateManifest(cmd.Context(), data, file, artifacts, cat)
		if !v.Valid {
			for _, p := range v.Problems {
				fmt.Fprintf(a.errOut, "%s\n", p)
			}
			return usageErrorf("%s: invalid release manifest: %d problem(s); nothing uploaded", file, len(v.Problems))
		}
		m, err := manifest.Parse(data, file)
		if err != nil {
			return usageError(err) // cannot happen: it validated
		}
		// Ask first whether this caller may create it and whether it is
		// new: a refusal after the uploads would leave them behind.
		if _, err := a.createRelease(cmd.Context(), &controllerv1.CreateReleaseRequest{
			ManifestYaml: data, Filename: filepath.Base(file), CheckOnly: true,
		}); err != nil {
			return rpcErr("create release "+m.Name+"@"+m.Version+" (nothing uploaded)", err)
		}
		digests := map[string]string{}
		for _, c := range m.Components {
			if c.Path == "" {
				continue
			}
			path, err := m.LocalPath(c, artifacts)
			if err != nil { // it validated: the tree changed since
				return usageErrorf("%s:%d: component %s: %v; nothing created", file, c.Line, c.Name, err)
			}
			fmt.Fprintf(a.errOut, "pushing component %s (%s)\n", c.Name, path)
			rec, err := a.pushFile(cmd.Context(), path, filepath.Base(c.Path), c.Kind)
			if err != nil {
				return err
			}
			digests[c.Name] = rec.GetDigest()
		}
		rec, err := a.createRelease(cmd.Context(), &controllerv1.CreateReleaseRequest{
			ManifestYaml: data, Filename: filepath.Base(file), ComponentDigests: digests,
		})
		if err != nil {
			return rpcErr("create release "+m.Name+"@"+m.Version, err)
		}
		_, err = fmt.Fprintf(a.out, "release %s@%s created (draft): %d components\n", rec.GetName(), rec.GetVersion(), len(rec.GetComponents()))
		return err
	}
	return cmd
}

// createRelease makes one CreateRelease call.
func (a *app) createRelease(ctx context.Context, req *controllerv1.CreateReleaseRequest) (*controllerv1.ReleaseRecord, error) {
	cc, ctx, cancel, err := a.client(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	return controllerv1.NewReleasesClient(cc).CreateRelease(ctx, req)
}

// releaseCall makes one call about a release and returns its record.
func (a *app) releaseCall(cmd *cobra.Command, op string, call func(context.Context, controllerv1.ReleasesClient) (*controllerv1.ReleaseRecord, error)) (*controllerv1.ReleaseRecord, error) {
	cc, err := a.conn()
	if err != nil {
		return nil, err
	}
	ctx, cancel := a.callCtx(cmd.Context())
	defer cancel()
	rec, err := call(ctx, controllerv1.NewReleasesClient(cc))
	if err != nil {
		return nil, rpcErr(op, err)
	}
	return rec, nil
}

func (a *app) newReleaseSealCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "seal NAME@VERSION",
		Short: "Freeze a draft release and sign it",
		Long: `Seal freezes a draft's manifest and artifact digests into one release
digest and signs it with the controller's ed25519 release key. A sealed
release never changes: a change is a new version. Only a sealed release
can be tested and approved.`,
		Example: `  cairnctl release seal webshop@1.0.0`,
		Args:    releaseArg,
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, _ := parseReleaseRef(args[0])
		rec, err := a.releaseCall(cmd, "seal release "+args[0], func(ctx context.Context, c controllerv1.ReleasesClient) (*controllerv1.ReleaseRecord, error) {
			return c.SealRelease(ctx, ref)
		})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.out, "release %s sealed: digest sha256:%s, signed\n", args[0], rec.GetDigest())
		return err
	}
	return cmd
}

// testResults are the results a tester records.
var testResults = []string{"pass", "fail"}

func (a *app) newReleaseTestRecordCommand() *cobra.Command {
	var result, note string
	var evidence []string
	cmd := &cobra.Command{
		Use:   "record NAME@VERSION --result pass|fail [--evidence FILE ...] --note TEXT",
		Short: "Record the result of testing a sealed release",
		Long: `Record stores a test result for a sealed release, with a note and evidence
files (test reports, screenshots). Each evidence file is pushed to the DML
as documentation and the result refers to it by digest. It needs the
tester role, and the release's author cannot record it. A pass moves the
release to tested.`,
		Example: `  cairnctl release test record webshop@1.0.0 --result pass --note "staging run 42 green"
  cairnctl release test record webshop@1.0.0 --result fail --evidence junit.xml --evidence log.txt --note "checkout broken"`,
		Args: releaseArg,
	}
	cmd.Flags().StringVar(&result, "result", "", "the result: pass or fail (required)")
	cmd.Flags().StringArrayVar(&evidence, "evidence", nil, "an evidence file to push to the DML (repeatable)")
	cmd.Flags().StringVar(&note, "note", "", "what was tested and how (required)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, _ := parseReleaseRef(args[0])
		if !slices.Contains(testResults, result) {
			return usageErrorf("--result must be pass or fail, got %q", result)
		}
		if strings.TrimSpace(note) == "" {
			return usageErrorf("--note TEXT is required: say what was tested")
		}
		var digests []string
		for _, path := range evidence {
			rec, err := a.pushFile(cmd.Context(), path, filepath.Base(path), "documentation")
			if err != nil {
				return err
			}
			digests = append(digests, rec.GetDigest())
		}
		rec, err := a.releaseCall(cmd, "record test of "+args[0], func(ctx context.Context, c controllerv1.ReleasesClient) (*controllerv1.ReleaseRecord, error) {
			return c.RecordTest(ctx, &controllerv1.RecordTestRequest{Release: ref, Result: result, Note: note, Evidence: digests})
		})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.out, "release %s: test %s recorded with %d evidence file(s); state %s\n", args[0], result, len(digests), enumName(rec.GetState()))
		return err
	}
	return cmd
}

// newReleaseDecisionCommand is release approve or release reject.
func (a *app) newReleaseDecisionCommand(verb string) *cobra.Command {
	var note string
	past := map[string]string{"approve": "approved", "reject": "rejected"}[verb]
	cmd := &cobra.Command{
		Use:   verb + " NAME@VERSION --note TEXT",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a tested release (approver role)",
		Long: strings.ToUpper(verb[:1]) + verb[1:] + ` records the approver's decision on a tested release, bound to its
digest. It needs the approver role; the release's author and its testers
cannot decide on it, and one approver counts once. A release is approved
when the manifest's number of distinct approvers have approved it; one
rejection rejects it.`,
		Example: "  cairnctl release " + verb + ` webshop@1.0.0 --note "change CHG-1042"`,
		Args:    releaseArg,
	}
	cmd.Flags().StringVar(&note, "note", "", "the reason, e.g. the change ticket (required)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, _ := parseReleaseRef(args[0])
		if strings.TrimSpace(note) == "" {
			return usageErrorf("--note TEXT is required: give the reason for the decision")
		}
		req := &controllerv1.DecisionRequest{Release: ref, Note: note}
		rec, err := a.releaseCall(cmd, verb+" release "+args[0], func(ctx context.Context, c controllerv1.ReleasesClient) (*controllerv1.ReleaseRecord, error) {
			if verb == "approve" {
				return c.ApproveRelease(ctx, req)
			}
			return c.RejectRelease(ctx, req)
		})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.out, "release %s %s (%d of %d approvals); state %s\n", args[0], past,
			approvals(rec), max(rec.GetApprovalsRequired(), 1), enumName(rec.GetState()))
		return err
	}
	return cmd
}

// approvals counts the distinct approvers of rec.
func approvals(rec *controllerv1.ReleaseRecord) int {
	by := map[string]bool{}
	for _, d := range rec.GetDecisions() {
		if d.GetDecision() == "approve" {
			by[d.GetBy()] = true
		}
	}
	return len(by)
}

func (a *app) newReleaseShowCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show NAME@VERSION",
		Short: "Show a release: state, digest, signature, components, tests and decisions",
		Long:  `Show prints a release's record. -o json or yaml prints all of it, manifest included.`,
		Example: `  cairnctl release show webshop@1.0.0
  cairnctl release show webshop@1.0.0 -o json`,
		Args: releaseArg,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		ref, _ := parseReleaseRef(args[0])
		rec, err := a.releaseCall(cmd, "release "+args[0], func(ctx context.Context, c controllerv1.ReleasesClient) (*controllerv1.ReleaseRecord, error) {
			return c.GetRelease(ctx, ref)
		})
		if err != nil {
			return err
		}
		if f.name != formatTable {
			return printProto(a.out, f, rec, nil)
		}
		return a.printRelease(rec)
	}
	return cmd
}

// printRelease writes rec for people.
func (a *app) printRelease(rec *controllerv1.ReleaseRecord) error {
	var b strings.Builder
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	fmt.Fprintf(&b, "release:    %s@%s\n", rec.GetName(), rec.GetVersion())
	fmt.Fprintf(&b, "state:      %s\n", enumName(rec.GetState()))
	if rec.GetService() != "" {
		fmt.Fprintf(&b, "service:    %s\n", rec.GetService())
	}
	digest := "-"
	if rec.GetDigest() != "" {
		digest = "sha256:" + rec.GetDigest()
	}
	fmt.Fprintf(&b, "digest:     %s\n", digest)
	sig := "-"
	if s := rec.GetSignature(); len(s) > 0 {
		sig = fmt.Sprintf("ed25519 %s… (%d bytes)", hex.EncodeToString(s[:min(8, len(s))]), len(s))
	}
	fmt.Fprintf(&b, "signature:  %s\n", sig)
	fmt.Fprintf(&b, "created:    %s by %s\n", orDash(rec.GetCreatedAt()), orDash(rec.GetCreatedBy()))
	if rec.GetSealedBy() != "" {
		fmt.Fprintf(&b, "sealed:     %s by %s\n", rec.GetSealedAt(), rec.GetSealedBy())
	}
	fmt.Fprintf(&b, "approvals:  %d of %d required\n", approvals(rec), max(rec.GetApprovalsRequired(), 1))
	b.WriteString("\ncomponents:\n")
	t := newTable(&b)
	t.row("  NAME", "KIND", "DIGEST", "SIZE")
	for _, c := range rec.GetComponents() {
		t.row("  "+c.GetName(), c.GetKind(), c.GetDigest(), strconv.FormatInt(c.GetSizeBytes(), 10))
	}
	t.flush()
	b.WriteString("\ntests:\n")
	if len(rec.GetTests()) == 0 {
		b.WriteString("  none\n")
	} else {
		t := newTable(&b)
		t.row("  TESTER", "RESULT", "EVIDENCE", "AT", "NOTE")
		for _, tr := range rec.GetTests() {
			ev := make([]string, len(tr.GetEvidence()))
			for i, d := range tr.GetEvidence() {
				ev[i] = d[:min(12, len(d))]
			}
			t.row("  "+tr.GetTester(), tr.GetResult(), strings.Join(ev, ","), ago(a.now(), tr.GetRecordedAt()), tr.GetNote())
		}
		t.flush()
	}
	b.WriteString("\ndecisions:\n")
	if len(rec.GetDecisions()) == 0 {
		b.WriteString("  none\n")
	} else {
		t := newTable(&b)
		t.row("  BY", "DECISION", "AT", "NOTE")
		for _, d := range rec.GetDecisions() {
			t.row("  "+d.GetBy(), d.GetDecision(), ago(a.now(), d.GetAt()), d.GetNote())
		}
		t.flush()
	}
	_, err := io.WriteString(a.out, b.String())
	return err
}

func (a *app) newReleaseListCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "list [--name NAME]",
		Short: "List releases",
		Long:  `List prints every release (or every version of one) with its state and sign-off.`,
		Example: `  cairnctl release list
  cairnctl release list --name webshop -o json`,
		Args: noArgs,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.Flags().StringVar(&name, "name", "", "only the versions of this release")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := controllerv1.NewReleasesClient(cc).ListReleases(ctx, &controllerv1.ListReleasesRequest{Name: name})
		if err != nil {
			return rpcErr("list releases", err)
		}
		return printProto(a.out, f, resp, func(t *table) {
			t.row("RELEASE", "STATE", "COMPONENTS", "TESTS", "APPROVALS", "DIGEST", "CREATED BY", "CREATED")
			for _, r := range resp.GetReleases() {
				t.row(r.GetName()+"@"+r.GetVersion(), enumName(r.GetState()), strconv.Itoa(len(r.GetComponents())),
					strconv.Itoa(len(r.GetTests())), fmt.Sprintf("%d/%d", approvals(r), max(r.GetApprovalsRequired(), 1)),
					r.GetDigest()[:min(12, len(r.GetDigest()))], r.GetCreatedBy(), ago(a.now(), r.GetCreatedAt()))
			}
		})
	}
	return cmd
}

func (a *app) newReleaseVerifyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify NAME@VERSION",
		Short: "Check a sealed release's signature and every artifact digest",
		Long: `Verify has the controller recompute the release digest from the stored
manifest and component digests, check the signature with its release
key, and re-hash every artifact in the DML. Exit status 0 when all of it
verifies, 1 with every problem listed when something does not.`,
		Example: `  cairnctl release verify webshop@1.0.0`,
		Args:    releaseArg,
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, _ := parseReleaseRef(args[0])
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		client := controllerv1.NewReleasesClient(cc)
		resp, err := client.VerifyRelease(ctx, ref)
		if err != nil {
			return rpcErr("verify release "+args[0], err)
		}
		if !resp.GetOk() {
			for _, p := range resp.GetProblems() {
				fmt.Fprintf(a.out, "%s: %s\n", args[0], p)
			}
			return failedf("release %s does not verify: %d problem(s)", args[0], max(len(resp.GetProblems()), 1))
		}
		rec, err := client.GetRelease(ctx, ref)
		if err != nil {
			return rpcErr("release "+args[0], err)
		}
		_, err = fmt.Fprintf(a.out, "release %s verifies: signature and %d artifact digests\n", args[0], len(rec.GetComponents()))
		return err
	}
	return cmd
}

// newReleaseRenderCommand is release notes or release dossier.
func (a *app) newReleaseRenderCommand(what string) *cobra.Command {
	var out string
	var f *format
	cmd := &cobra.Command{
		Use:  what + " NAME@VERSION",
		Args: releaseArg,
	}
	if what == "notes" {
		cmd.Short = "Render a release's notes"
		cmd.Long = `Notes renders the release notes from the release: its components with
digests, the declared changes, known errors and workarounds, and the
manifest's notes.`
		cmd.Example = `  cairnctl release notes webshop@1.0.0
  cairnctl release notes webshop@1.0.0 -o html --out notes.html`
		f = addFormat(cmd, formatMarkdown, formatMarkdown, formatHTML)
	} else {
		cmd.Short = "Render the audit dossier of a release"
		cmd.Long = `Dossier renders what an auditor needs about a release: its manifest,
digests and signature, who did what and when, the test evidence, the
approvals and the deployments so far.`
		cmd.Example = `  cairnctl release dossier webshop@1.0.0
  cairnctl release dossier webshop@1.0.0 -o html --out dossier.html`
		f = addFormat(cmd, formatJSON, formatJSON, formatMarkdown, formatHTML)
	}
	cmd.Use += " [-o " + strings.Join(f.allowed, "|") + "] [--out FILE]"
	cmd.Flags().StringVar(&out, "out", "", "write to FILE instead of standard output")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		ref, _ := parseReleaseRef(args[0])
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		req := &controllerv1.RenderRequest{Release: ref, Format: f.name}
		client := controllerv1.NewReleasesClient(cc)
		var resp *controllerv1.RenderResponse
		if what == "notes" {
			resp, err = client.ReleaseNotes(ctx, req)
		} else {
			resp, err = client.ReleaseDossier(ctx, req)
		}
		if err != nil {
			return rpcErr("release "+what+" "+args[0], err)
		}
		if out == "" {
			_, err = a.out.Write(resp.GetContent())
			return err
		}
		if err := atomicfile.Write(out, fileContent(f.name, resp.GetContent()), 0o644); err != nil {
			return failedf("release %s: write %s: %w", what, out, err)
		}
		_, err = fmt.Fprintf(a.out, "%s: release %s of %s (%s, %d bytes)\n", out, what, args[0], f.name, len(resp.GetContent()))
		return err
	}
	return cmd
}
