// Package testpg starts a real PostgreSQL server for tests: Debian's postgresql binaries, a
// temporary data directory, password (SCRAM) authentication, listening on a loopback port
// only. Without the binaries a test skips, unless STRONGROOM_REQUIRE_ALL=1 (CI installs
// Debian's postgresql package), where it fails.
package testpg

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Superuser is the name and password of the server's superuser.
const (
	Superuser         = "postgres"
	SuperuserPassword = "pg-test-superuser"
)

// Server is a running PostgreSQL server.
type Server struct {
	Host string
	Port int
	dir  string
	bin  string
	cred *syscall.Credential // run as the postgres user when the test runs as root
	t    testing.TB
}

// bindir finds Debian's PostgreSQL binaries (the newest major version).
func bindir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return a > b
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

// Start starts a server for t and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := bindir()
	if bin == "" {
		if os.Getenv("STRONGROOM_REQUIRE_ALL") == "1" {
			t.Fatal("PostgreSQL is missing (required: STRONGROOM_REQUIRE_ALL=1; install Debian's postgresql package)")
		}
		t.Skip("PostgreSQL is missing (install Debian's postgresql package; STRONGROOM_REQUIRE_ALL=1 makes this a failure)")
	}
	s := &Server{Host: "127.0.0.1", bin: bin, t: t}
	dir, err := os.MkdirTemp("", "strongroom-pg-")
	if err != nil {
		t.Fatal(err)
	}
	s.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 { // PostgreSQL refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres user (Debian's postgresql package creates it): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(SuperuserPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s.cred != nil {
		_ = os.Chown(pwfile, int(s.cred.Uid), int(s.cred.Gid))
	}
	if out, err := s.run("initdb", "-D", s.data(), "-U", Superuser, "--pwfile", pwfile, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	for attempt := 0; ; attempt++ {
		s.Port = freePort(t)
		out, err := s.run("pg_ctl", "-D", s.data(), "-w", "-t", "30", "-l", filepath.Join(dir, "log"), "-o",
			fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off", s.Port, dir), "start")
		if err == nil {
			break
		}
		if attempt == 2 {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
		}
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func (s *Server) run(tool string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.bin, tool), args...)
	cmd.Dir = s.dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// Stop stops the server (fast shutdown); Start's cleanup calls it too.
func (s *Server) Stop() {
	_, _ = s.run("pg_ctl", "-D", s.data(), "-m", "fast", "-w", "stop")
}

// Restart starts a stopped server again on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	out, err := s.run("pg_ctl", "-D", s.data(), "-w", "-t", "30", "-l", filepath.Join(s.dir, "log"), "-o",
		fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off", s.Port, s.dir), "start")
	if err != nil {
		s.t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
}

// Connect logs in as user with password to the postgres database.
func (s *Server) Connect(ctx context.Context, user, password string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=postgres sslmode=disable", s.Host, s.Port))
	if err != nil {
		return nil, err
	}
	cfg.User, cfg.Password, cfg.ConnectTimeout = user, password, 5*time.Second
	return pgx.ConnectConfig(ctx, cfg)
}

// CanLogin reports whether user logs in with password.
func (s *Server) CanLogin(ctx context.Context, user, password string) bool {
	c, err := s.Connect(ctx, user, password)
	if err != nil {
		return false
	}
	_ = c.Close(ctx)
	return true
}

// Exec runs sql as the superuser.
func (s *Server) Exec(ctx context.Context, sql string) {
	s.t.Helper()
	c, err := s.Connect(ctx, Superuser, SuperuserPassword)
	if err != nil {
		s.t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
}

// Doc is a connection document (the rotators' secret value) for user and password.
func (s *Server) Doc(user, password string) string {
	return fmt.Sprintf(`{"engine":"postgres","host":%q,"port":%d,"dbname":"postgres","username":%q,"password":%q,"sslmode":"disable"}`,
		s.Host, s.Port, user, password)
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
