package auth

// Roles. An operator's user has one or more; admin implies all.
const (
	RoleAdmin          = "admin"
	RoleReleaseManager = "release-manager"
	RoleTester         = "tester"
	RoleApprover       = "approver"
	RoleOperator       = "operator"
	RoleAuditor        = "auditor"
)

// Roles lists every role, for validation and help text.
var Roles = []string{RoleAdmin, RoleReleaseManager, RoleTester, RoleApprover, RoleOperator, RoleAuditor}

// ValidRole reports whether r is a known role.
func ValidRole(r string) bool {
	for _, x := range Roles {
		if x == r {
			return true
		}
	}
	return false
}
