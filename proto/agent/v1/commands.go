package agentv1

// Hand-written vocabulary of agent.proto's commands (the generated code
// is in agent.pb.go), shared by the controller that sends them and the
// agent that runs them.

// Actions of a DeployCommand.
const (
	// ActionApply runs the release's steps and verify checks.
	ActionApply = "apply"
	// ActionRollback undoes the deployment of the apply command
	// undo_command_id and runs the release's rollback steps.
	ActionRollback = "rollback"
	// ActionPlan is the dry run: the steps are validated and planned,
	// nothing is changed.
	ActionPlan = "plan"
)

// Kinds of an OutboxItem: which report it carries.
const (
	// OutboxStepResult is a finished step: a StepResult.
	OutboxStepResult = "step_result"
	// OutboxDeploymentResult is the end of a deployment: an ApplyReport.
	OutboxDeploymentResult = "deployment_result"
	// OutboxDeploymentInterrupted is a step a crash cut off: an
	// Interruption.
	OutboxDeploymentInterrupted = "deployment_interrupted"
)
