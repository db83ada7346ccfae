package rotators_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/outbound"
	"github.com/strongroom/strongroom/internal/rotation"
	"github.com/strongroom/strongroom/internal/rotators"
	"github.com/strongroom/strongroom/internal/testpg"
)

func doc(t *testing.T, v string) rotators.Conn {
	t.Helper()
	var c rotators.Conn
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// rotateOnce runs the three steps as the service would.
func rotateOnce(t *testing.T, p *rotators.Postgres, spec *rotation.RotatorSpec, in rotation.Input) string {
	t.Helper()
	ctx := context.Background()
	pending, err := p.Prepare(ctx, spec, in)
	if err != nil {
		t.Fatal(err)
	}
	in.Pending = pending
	if err := p.Apply(ctx, spec, in); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if err := p.Apply(ctx, spec, in); err != nil { // repeated after a crash
		t.Fatalf("apply again: %v", err)
	}
	if err := p.Test(ctx, spec, in); err != nil {
		t.Fatalf("test: %v", err)
	}
	return pending
}

func TestPostgres_SingleUser(t *testing.T) {
	pg := testpg.Start(t)
	ctx := context.Background()
	pg.Exec(ctx, `CREATE ROLE app WITH LOGIN PASSWORD 'first-pw'`)
	p := &rotators.Postgres{}
	spec := &rotation.RotatorSpec{Kind: rotation.KindPostgres, Strategy: rotation.StrategySingleUser,
		Generator: &rotation.Generator{Length: 40, Classes: []string{"lower", "upper", "digit", "symbol"}, Exclude: ":/@\"\\"}}
	current := pg.Doc("app", "first-pw")
	for i := range 3 {
		next := rotateOnce(t, p, spec, rotation.Input{Current: current})
		c := doc(t, next)
		if c.Username != "app" || len(c.Password) != 40 || c.Host != pg.Host || c.Port != pg.Port {
			t.Fatalf("rotation %d: pending document %+v", i, c)
		}
		if !pg.CanLogin(ctx, "app", c.Password) || pg.CanLogin(ctx, "app", doc(t, current).Password) {
			t.Fatalf("rotation %d: the database does not accept exactly the new password", i)
		}
		current = next
	}
	// A password with a quote cannot break out of the statement.
	quoted := pg.Doc("app", doc(t, current).Password)
	spec.Generator = &rotation.Generator{Length: 30, Classes: []string{"symbol", "lower"}, Exclude: "\\"}
	next := rotateOnce(t, p, spec, rotation.Input{Current: quoted})
	if !pg.CanLogin(ctx, "app", doc(t, next).Password) {
		t.Fatal("a password with symbols was not set")
	}
}

func TestPostgres_AlternatingUsers(t *testing.T) {
	pg := testpg.Start(t)
	ctx := context.Background()
	pg.Exec(ctx, `CREATE ROLE app WITH LOGIN PASSWORD 'app-pw'`)
	pg.Exec(ctx, `CREATE TABLE t (x int)`)
	pg.Exec(ctx, `GRANT SELECT ON t TO app`)
	admin := pg.Doc(testpg.Superuser, testpg.SuperuserPassword)
	p := &rotators.Postgres{}
	spec := &rotation.RotatorSpec{Kind: rotation.KindPostgres, Strategy: rotation.StrategyAlternatingUsers}
	current := pg.Doc("app", "app-pw")
	users := []string{}
	for range 3 {
		next := rotateOnce(t, p, spec, rotation.Input{Current: current, Admin: admin})
		c, old := doc(t, next), doc(t, current)
		users = append(users, c.Username)
		if !pg.CanLogin(ctx, c.Username, c.Password) || !pg.CanLogin(ctx, old.Username, old.Password) {
			t.Fatalf("after rotating to %s, both the new and the previous login must work", c.Username)
		}
		conn, err := pg.Connect(ctx, c.Username, c.Password)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "SELECT x FROM t"); err != nil {
			t.Fatalf("%s lacks the original user's rights: %v", c.Username, err)
		}
		conn.Close(ctx)
		current = next
	}
	if strings.Join(users, ",") != "app_clone,app,app_clone" {
		t.Fatalf("users alternated as %v", users)
	}

	// The administrator must be on the target's server: a target moved elsewhere cannot
	// receive the administrator's credentials.
	moved := strings.Replace(current, `"host":"127.0.0.1"`, `"host":"db.example.com"`, 1)
	if _, err := p.Prepare(ctx, spec, rotation.Input{Current: moved, Admin: admin}); err != nil {
		t.Fatal(err)
	}
	in := rotation.Input{Current: moved, Admin: admin}
	in.Pending, _ = p.Prepare(ctx, spec, in)
	if err := p.Apply(ctx, spec, in); err == nil || !strings.Contains(err.Error(), "same server") {
		t.Fatalf("apply with the administrator on another server: %v", err)
	}
}

func TestPostgres_Refusals(t *testing.T) {
	pg := testpg.Start(t)
	ctx := context.Background()
	pg.Exec(ctx, `CREATE ROLE app WITH LOGIN PASSWORD 'app-pw'`)
	spec := &rotation.RotatorSpec{Kind: rotation.KindPostgres}

	// The outbound rules: a loopback database is refused unless allowed.
	refusing := &rotators.Postgres{Dial: outbound.New(outbound.Options{}).Dial}
	in := rotation.Input{Current: pg.Doc("app", "app-pw")}
	in.Pending, _ = refusing.Prepare(ctx, spec, in)
	err := refusing.Apply(ctx, spec, in)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("apply to a loopback database: %v", err)
	}
	allowing := &rotators.Postgres{Dial: outbound.New(outbound.Options{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}).Dial}
	if err := allowing.Apply(ctx, spec, in); err != nil {
		t.Fatalf("apply with loopback allowed: %v", err)
	}

	// A wrong current password: the error says so without any value.
	p := &rotators.Postgres{}
	in = rotation.Input{Current: pg.Doc("app", "not-the-password")}
	in.Pending, _ = p.Prepare(ctx, spec, in)
	err = p.Apply(ctx, spec, in)
	if err == nil || strings.Contains(err.Error(), "not-the-password") || strings.Contains(err.Error(), doc(t, in.Pending).Password) {
		t.Fatalf("apply with a wrong current password: %v", err)
	}
	for _, bad := range []string{`not json`, `{"engine":"mysql","host":"h","username":"u"}`, `{"engine":"postgres","username":"u"}`} {
		if _, err := p.Prepare(ctx, spec, rotation.Input{Current: bad}); err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("prepare of %q: accepted", bad)
		}
	}
}
