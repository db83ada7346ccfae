package rbac_test

import (
	"fmt"
	"testing"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/rbac"
)

// BenchmarkDecide_1000Assignments200Groups: one data-plane decision in a deployment with 1,000
// role assignments spread over 200 groups, for a caller in 10 of them (a chain of nested
// groups) who is granted through its own assignment, and for one granted only through its last
// group. The benchmark row in docs/benchmarks.md is the end-to-end one; this isolates the
// decision.
func BenchmarkDecide_1000Assignments200Groups(b *testing.B) {
	e := newEnv(b)
	s := e.service(b)
	groups := make([]string, 200)
	for i := range groups {
		groups[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	roles := []string{rbac.KeyVaultSecretsUserID, rbac.KeyVaultReaderID, rbac.KeyVaultSecretsOfficerID, rbac.ReaderID, rbac.KeyVaultAdministratorID}
	for i := 0; i < 1000; i++ {
		a := rbac.Assignment{Name: fmt.Sprintf("10000000-0000-4000-8000-%012d", i), PrincipalID: groups[i%200], RoleID: roles[i%len(roles)],
			Scope: fmt.Sprintf("%s/secrets/s%d", vault, i)}
		if _, err := s.CreateAssignment(e.ctx, a, admin); err != nil {
			b.Fatal(err)
		}
	}
	reader := "eeeeeeee-0000-4000-8000-000000000001"
	if _, err := s.CreateAssignment(e.ctx, rbac.Assignment{Name: "20000000-0000-4000-8000-000000000001", PrincipalID: groups[9],
		RoleID: rbac.KeyVaultSecretsUserID, Scope: vault}, admin); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, principal string
	}{{"own assignment", admin}, {"through the tenth group", reader}} {
		req := authz.Request{PrincipalID: c.principal, Groups: groups[:10], Action: getSecret, DataAction: true, Scope: vault + "/secrets/perf-0001"}
		if !s.Decide(req).Allowed {
			b.Fatalf("%s: denied", c.name)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if !s.Decide(req).Allowed {
					b.Fatal("denied")
				}
			}
		})
	}
}
