package auth

import (
	"google.golang.org/grpc/health/grpc_health_v1"

	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Rule says who may call one method. Exactly one kind of caller is
// allowed: everyone (Open), an enrolled node by its client certificate
// (Node), any authenticated user (AnyUser), or users holding one of Roles.
// Admin is always allowed a user method. A Rule with none of these set
// allows admin only.
type Rule struct {
	// Open methods need no credentials: enrollment and health checks.
	Open bool
	// Node methods need the client certificate of an enrolled node that
	// is not revoked.
	Node bool
	// AnyUser methods need a valid bearer token of any user.
	AnyUser bool
	// Roles lists the roles of which the user needs one (admin always
	// passes).
	Roles []string
}

// Role sets used in Rules.
var (
	// readers may read nodes, audits, the CMS and services.
	readers = []string{RoleAuditor, RoleOperator, RoleReleaseManager, RoleTester, RoleApprover}
	// operators change the fleet day to day.
	operators = []string{RoleOperator}
	// auditors read and verify the audit log.
	auditors = []string{RoleAuditor}
	// releasers put artifacts into the DML and collect its garbage.
	releasers = []string{RoleOperator, RoleReleaseManager}
	// uploaders push artifacts: releasers, and testers their evidence.
	uploaders = []string{RoleOperator, RoleReleaseManager, RoleTester}
	// releaseManagers create and seal releases.
	releaseManagers = []string{RoleReleaseManager}
	// testers record release tests.
	testers = []string{RoleTester}
	// approvers approve or reject releases.
	approvers = []string{RoleApprover}
	// deployers plan, start and steer rollouts.
	deployers = []string{RoleOperator, RoleReleaseManager}
	// admins manage users, tokens, revocation and imports.
	admins = []string{RoleAdmin}
)

// Rules is the authorization table: every method the controller serves,
// by full gRPC method name. A method missing from it is refused, never
// open by default; a test checks that the table and the registered
// methods match exactly.
var Rules = map[string]Rule{
	// Open: health checks for load balancers, and enrollment, which
	// carries its own single-use join token.
	grpc_health_v1.Health_Check_FullMethodName: {Open: true},
	grpc_health_v1.Health_Watch_FullMethodName: {Open: true},
	// List names every service the controller serves; not for anonymous
	// callers.
	grpc_health_v1.Health_List_FullMethodName: {AnyUser: true},
	agentv1.Enrollment_Enroll_FullMethodName:  {Open: true},

	// Agents, by client certificate.
	agentv1.Agent_Session_FullMethodName:     {Node: true},
	agentv1.Agent_UploadAudit_FullMethodName: {Node: true},
	agentv1.Agent_Renew_FullMethodName:       {Node: true},
	// Only the artifacts of the node's own unfinished deploy commands;
	// controller/fleet checks that per call.
	agentv1.Agent_FetchArtifact_FullMethodName: {Node: true},

	controllerv1.EnrollTokens_CreateEnrollToken_FullMethodName: {Roles: operators},

	controllerv1.Nodes_ListNodes_FullMethodName:  {Roles: readers},
	controllerv1.Nodes_GetNode_FullMethodName:    {Roles: readers},
	controllerv1.Nodes_LabelNode_FullMethodName:  {Roles: operators},
	controllerv1.Nodes_RevokeNode_FullMethodName: {Roles: admins},

	controllerv1.Audits_RunAudit_FullMethodName:   {Roles: operators},
	controllerv1.Audits_GetCommand_FullMethodName: {Roles: readers},
	controllerv1.Audits_ListAudits_FullMethodName: {Roles: readers},
	controllerv1.Audits_GetAudit_FullMethodName:   {Roles: readers},

	controllerv1.CMS_AcceptBaseline_FullMethodName:  {Roles: operators},
	controllerv1.CMS_BaselineHistory_FullMethodName: {Roles: readers},
	controllerv1.CMS_Drift_FullMethodName:           {Roles: readers},
	controllerv1.CMS_Export_FullMethodName:          {Roles: readers},
	controllerv1.CMS_Import_FullMethodName:          {Roles: admins},

	controllerv1.Services_CreateService_FullMethodName: {Roles: operators},
	controllerv1.Services_ListServices_FullMethodName:  {Roles: readers},
	controllerv1.Services_DeleteService_FullMethodName: {Roles: operators},

	controllerv1.Users_CreateUser_FullMethodName:  {Roles: admins},
	controllerv1.Users_ListUsers_FullMethodName:   {Roles: readers},
	controllerv1.Users_CreateToken_FullMethodName: {Roles: admins},
	controllerv1.Users_WhoAmI_FullMethodName:      {AnyUser: true},
	// Auditors review who holds access; only admins change it.
	controllerv1.Users_ListTokens_FullMethodName:  {Roles: auditors},
	controllerv1.Users_RevokeToken_FullMethodName: {Roles: admins},
	controllerv1.Users_DisableUser_FullMethodName: {Roles: admins},
	controllerv1.Users_EnableUser_FullMethodName:  {Roles: admins},
	controllerv1.Users_SetRoles_FullMethodName:    {Roles: admins},

	controllerv1.AuditLog_ListEntries_FullMethodName: {Roles: auditors},
	controllerv1.AuditLog_Verify_FullMethodName:      {Roles: auditors},

	controllerv1.Artifacts_Push_FullMethodName:         {Roles: uploaders},
	controllerv1.Artifacts_UploadStatus_FullMethodName: {Roles: uploaders},
	// Only the caller's own uploads (admins: any); controller/api checks.
	controllerv1.Artifacts_DiscardUpload_FullMethodName:  {Roles: uploaders},
	controllerv1.Artifacts_CollectGarbage_FullMethodName: {Roles: releasers},
	controllerv1.Artifacts_ListArtifacts_FullMethodName:  {Roles: readers},
	controllerv1.Artifacts_GetArtifact_FullMethodName:    {Roles: readers},
	controllerv1.Artifacts_Download_FullMethodName:       {Roles: readers},
	controllerv1.Artifacts_Where_FullMethodName:          {Roles: readers},

	// Releases: segregation of duties between the roles is enforced
	// again per release by controller/release.
	controllerv1.Releases_CreateRelease_FullMethodName:      {Roles: releaseManagers},
	controllerv1.Releases_SealRelease_FullMethodName:        {Roles: releaseManagers},
	controllerv1.Releases_RecordTest_FullMethodName:         {Roles: testers},
	controllerv1.Releases_ApproveRelease_FullMethodName:     {Roles: approvers},
	controllerv1.Releases_RejectRelease_FullMethodName:      {Roles: approvers},
	controllerv1.Releases_GetRelease_FullMethodName:         {Roles: readers},
	controllerv1.Releases_ListReleases_FullMethodName:       {Roles: readers},
	controllerv1.Releases_VerifyRelease_FullMethodName:      {Roles: readers},
	controllerv1.Releases_ReleaseNotes_FullMethodName:       {Roles: readers},
	controllerv1.Releases_ReleaseDossier_FullMethodName:     {Roles: readers},
	controllerv1.KnownErrors_ListKnownErrors_FullMethodName: {Roles: readers},

	controllerv1.Rollouts_PlanRollout_FullMethodName:     {Roles: deployers},
	controllerv1.Rollouts_StartRollout_FullMethodName:    {Roles: deployers},
	controllerv1.Rollouts_GetRollout_FullMethodName:      {Roles: readers},
	controllerv1.Rollouts_ListRollouts_FullMethodName:    {Roles: readers},
	controllerv1.Rollouts_WatchRollout_FullMethodName:    {Roles: readers},
	controllerv1.Rollouts_PauseRollout_FullMethodName:    {Roles: deployers},
	controllerv1.Rollouts_ResumeRollout_FullMethodName:   {Roles: deployers},
	controllerv1.Rollouts_AbortRollout_FullMethodName:    {Roles: deployers},
	controllerv1.Rollouts_RollbackRollout_FullMethodName: {Roles: deployers},
	controllerv1.Rollouts_ConfirmStep_FullMethodName:     {Roles: deployers},
	controllerv1.Rollouts_RolloutReport_FullMethodName:   {Roles: readers},
	// Whoever may read a report may check that one is genuine.
	controllerv1.Rollouts_VerifyRolloutReport_FullMethodName: {Roles: readers},
	// Retrying or resolving a node is steering a rollout.
	controllerv1.Rollouts_RetryRolloutNode_FullMethodName:   {Roles: deployers},
	controllerv1.Rollouts_ResolveRolloutNode_FullMethodName: {Roles: deployers},
}
