// Package rotators holds the built-in rotators that change a credential outside the server:
// postgres (a PostgreSQL role's password, with pgx) and webhook (user code over signed HTTPS
// calls). Each implements rotation.Rotator; the service runs them inside its crash-safe state
// machine, which repeats a step after a crash with the same pending value, so every step here
// is idempotent.
package rotators

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/strongroom/strongroom/internal/rotation"
)

// Conn is the connection document a postgres secret holds, in Secrets Manager's shape.
type Conn struct {
	Engine   string `json:"engine"`
	Host     string `json:"host"`
	Port     int    `json:"port,omitempty"`
	DBName   string `json:"dbname,omitempty"`
	Username string `json:"username"`
	Password string `json:"password"`
	// SSLMode is libpq's sslmode (disable, prefer, require, verify-ca, verify-full); default
	// prefer.
	SSLMode string `json:"sslmode,omitempty"`
}

// Dialer opens the TCP connection to a database host; the server passes its outbound client's,
// which refuses loopback, private and cluster addresses unless the config allows them.
type Dialer func(ctx context.Context, network, address string) (net.Conn, error)

// Postgres rotates a PostgreSQL role's password.
type Postgres struct {
	Dial    Dialer
	Timeout time.Duration // per connection and statement; default 10 s
}

// cloneSuffix names the second user of alternating-users, as Secrets Manager does.
const cloneSuffix = "_clone"

const maxIdentifier = 63 // PostgreSQL's NAMEDATALEN - 1

func parseConn(value, what string) (Conn, error) {
	var c Conn
	if err := json.Unmarshal([]byte(value), &c); err != nil {
		return c, fmt.Errorf("the %s is not a JSON connection document {engine, host, port, dbname, username, password}", what)
	}
	switch {
	case c.Engine != "" && !strings.EqualFold(c.Engine, "postgres") && !strings.EqualFold(c.Engine, "postgresql"):
		return c, fmt.Errorf("the %s names engine %q, not postgres", what, c.Engine)
	case c.Host == "" || c.Username == "":
		return c, fmt.Errorf("the %s needs host and username", what)
	case len(c.Username) > maxIdentifier:
		return c, fmt.Errorf("the %s's username is longer than %d bytes", what, maxIdentifier)
	case c.Port < 0 || c.Port > 65535:
		return c, fmt.Errorf("the %s's port is out of range", what)
	}
	if c.Port == 0 {
		c.Port = 5432
	}
	return c, nil
}

func (p *Postgres) timeout() time.Duration {
	if p.Timeout <= 0 {
		return 10 * time.Second
	}
	return p.Timeout
}

// connect logs in as c. Errors name the host and user, never the password.
func (p *Postgres) connect(ctx context.Context, c Conn) (*pgx.Conn, error) {
	sslmode := c.SSLMode
	if sslmode == "" {
		sslmode = "prefer"
	}
	dsn := strings.Join([]string{kv("host", c.Host), kv("port", strconv.Itoa(c.Port)), kv("dbname", c.DBName),
		kv("user", c.Username), kv("password", c.Password), kv("sslmode", sslmode),
		kv("application_name", "strongroom-rotation")}, " ")
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("the connection document for %s:%d is not usable (check sslmode)", c.Host, c.Port)
	}
	cfg.ConnectTimeout = p.timeout()
	if p.Dial != nil {
		cfg.DialFunc = pgconn.DialFunc(p.Dial)
	}
	cctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("logging in to %s:%d as %s: %s", c.Host, c.Port, c.Username, pgError(err))
	}
	return conn, nil
}

// kv is one keyword='value' pair of a libpq connection string, quoted so that no value can
// add a keyword.
func kv(key, value string) string {
	return key + "='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(value) + "'"
}

// pgError is err's text without anything a server might echo back from the connection.
func pgError(err error) string {
	var pe interface{ SQLState() string }
	if errors.As(err, &pe) {
		return "SQLSTATE " + pe.SQLState() + ": " + lastLine(err.Error())
	}
	return lastLine(err.Error())
}

func lastLine(s string) string {
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		return s[i+2:]
	}
	return s
}

// quoteLiteral is a string literal for SQL where parameters cannot be used (ALTER ROLE ...
// PASSWORD): standard_conforming_strings is on since PostgreSQL 9.1, so only ' is doubled; a
// value with a NUL byte cannot be a password and is refused.
func quoteLiteral(v string) (string, error) {
	if strings.ContainsRune(v, 0) {
		return "", errors.New("a password cannot contain a NUL byte")
	}
	return "'" + strings.ReplaceAll(v, "'", "''") + "'", nil
}

// statement fills a password statement's {{username}} (an identifier) and {{password}} (a
// literal).
func statement(tmpl, user, password string) (string, error) {
	lit, err := quoteLiteral(password)
	if err != nil {
		return "", err
	}
	// A template wrote "{{username}}" inside quotes in Vault's default; both spellings work.
	tmpl = strings.ReplaceAll(tmpl, `"{{username}}"`, "{{username}}")
	tmpl = strings.ReplaceAll(tmpl, `'{{password}}'`, "{{password}}")
	return strings.NewReplacer("{{username}}", pgx.Identifier{user}.Sanitize(), "{{password}}", lit).Replace(tmpl), nil
}

const defaultStatement = `ALTER ROLE {{username}} WITH PASSWORD {{password}}`

// otherUser is the alternate of user: "<user>_clone", or back.
func otherUser(user string) string {
	if base, ok := strings.CutSuffix(user, cloneSuffix); ok && base != "" {
		return base
	}
	return user + cloneSuffix
}

// Prepare returns the connection document with a new password and, for alternating-users,
// the other user.
func (p *Postgres) Prepare(_ context.Context, spec *rotation.RotatorSpec, in rotation.Input) (string, error) {
	c, err := parseConn(in.Current, "secret's value")
	if err != nil {
		return "", err
	}
	if spec.Strategy == rotation.StrategyAlternatingUsers {
		c.Username = otherUser(c.Username)
		if len(c.Username) > maxIdentifier {
			return "", fmt.Errorf("the alternate user %s... is longer than %d bytes", c.Username[:20], maxIdentifier)
		}
	}
	gen := spec.Generator
	if gen == nil {
		gen = &rotation.Generator{}
	}
	if c.Password, err = gen.Generate(); err != nil {
		return "", err
	}
	b, err := json.Marshal(c)
	return string(b), err
}

// admin is the connection to change passwords with: the connection secret's document, which
// must name the same server as the target (so that a changed target cannot send the
// administrator's credentials elsewhere), or, for single-user without one, the current login.
func (p *Postgres) admin(spec *rotation.RotatorSpec, in rotation.Input, target Conn) (Conn, error) {
	if in.Admin == "" {
		if spec.Strategy == rotation.StrategyAlternatingUsers {
			return Conn{}, errors.New("alternating-users needs the connection secret's administrator")
		}
		return parseConn(in.Current, "secret's value")
	}
	a, err := parseConn(in.Admin, "connection secret's value")
	if err != nil {
		return a, err
	}
	if !strings.EqualFold(a.Host, target.Host) || a.Port != target.Port {
		return a, fmt.Errorf("the connection secret names %s:%d but the secret names %s:%d; both must name the same server", a.Host, a.Port, target.Host, target.Port)
	}
	if target.DBName != "" && a.DBName == "" {
		a.DBName = target.DBName
	}
	return a, nil
}

// Apply makes the database accept the pending document: nothing to do when it already logs in
// (the step ran before a crash); otherwise, as the administrator (or the current login), set
// the pending user's password, creating the alternate user on its first rotation with the
// original user's role granted.
func (p *Postgres) Apply(ctx context.Context, spec *rotation.RotatorSpec, in rotation.Input) error {
	pending, err := parseConn(in.Pending, "pending value")
	if err != nil {
		return err
	}
	current, err := parseConn(in.Current, "secret's value")
	if err != nil {
		return err
	}
	if !strings.EqualFold(pending.Host, current.Host) || pending.Port != current.Port {
		return errors.New("the pending value names another server than the current one")
	}
	if conn, err := p.connect(ctx, pending); err == nil {
		_ = conn.Close(ctx)
		return nil // already applied
	}
	a, err := p.admin(spec, in, current)
	if err != nil {
		return err
	}
	conn, err := p.connect(ctx, a)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	sctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	if spec.Strategy == rotation.StrategyAlternatingUsers {
		var exists bool
		if err := conn.QueryRow(sctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", pending.Username).Scan(&exists); err != nil {
			return fmt.Errorf("looking up role %s: %s", pending.Username, pgError(err))
		}
		if !exists {
			lit, err := quoteLiteral(pending.Password)
			if err != nil {
				return err
			}
			create := "CREATE ROLE " + pgx.Identifier{pending.Username}.Sanitize() + " WITH LOGIN PASSWORD " + lit
			grant := "GRANT " + pgx.Identifier{current.Username}.Sanitize() + " TO " + pgx.Identifier{pending.Username}.Sanitize()
			if _, err := conn.Exec(sctx, create); err != nil {
				return fmt.Errorf("creating role %s: %s", pending.Username, pgError(err))
			}
			if _, err := conn.Exec(sctx, grant); err != nil {
				return fmt.Errorf("granting %s to %s: %s", current.Username, pending.Username, pgError(err))
			}
			return nil
		}
	}
	stmts := spec.Statements
	if len(stmts) == 0 {
		stmts = []string{defaultStatement}
	}
	for _, tmpl := range stmts {
		q, err := statement(tmpl, pending.Username, pending.Password)
		if err != nil {
			return err
		}
		if _, err := conn.Exec(sctx, q); err != nil {
			return fmt.Errorf("setting the password of %s: %s", pending.Username, pgError(err))
		}
	}
	return nil
}

// Test logs in with the pending document and runs a probe.
func (p *Postgres) Test(ctx context.Context, _ *rotation.RotatorSpec, in rotation.Input) error {
	pending, err := parseConn(in.Pending, "pending value")
	if err != nil {
		return err
	}
	conn, err := p.connect(ctx, pending)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var one int
	sctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	if err := conn.QueryRow(sctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		return fmt.Errorf("probing as %s: %v", pending.Username, err)
	}
	return nil
}
