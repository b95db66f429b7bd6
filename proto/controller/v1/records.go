package controllerv1

// Hand-written vocabulary of the records above, shared by every package
// that reads or writes them (the generated code is in controller.pb.go).

// Command kinds: CommandRecord.kind.
const (
	// CommandKindAudit asks a node for an audit.
	CommandKindAudit = "audit"
	// CommandKindDeploy asks a node to plan, apply or roll back a
	// release (CommandRecord.deploy).
	CommandKindDeploy = "deploy"
)

// Name is how people name a rollout's node: its hostname, else its ID.
func (x *RolloutNode) Name() string {
	if h := x.GetHostname(); h != "" {
		return h
	}
	return x.GetNodeId()
}
