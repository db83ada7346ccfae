// Package testenv starts real `strongroom server` processes for tests and points the official
// Azure SDK clients at them. It is imported only by tests.
package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds ./cmd/strongroom once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("finding module root: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "strongroom-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "strongroom")
		args := []string{"build", "-o", binPath}
		if os.Getenv("STRONGROOM_TEST_RACE") == "1" {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/strongroom")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building strongroom: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Admin is the bootstrap credential from admin.json.
type Admin struct {
	TenantID       string `json:"tenantId"`
	SubscriptionID string `json:"subscriptionId"`
	ClientID       string `json:"clientId"`
	ClientSecret   string `json:"clientSecret"`
}

// Server is one running server process.
type Server struct {
	t       testing.TB
	DataDir string
	Port    int
	URL     string // https://localhost:<port>
	Admin   Admin
	Extra   []string // extra server flags
	Env     []string // extra environment
	Sealed  bool     // wait for the listener only (see Options.Sealed)
	// CAFile is the API CA clients trust (Options.CAFile); "" means <DataDir>/tls/ca.pem.
	CAFile string
	// DNSSuffix is the server's --dns-suffix (Options.DNSSuffix); "" means vault.localhost.
	DNSSuffix string

	mu     sync.Mutex
	cmd    *exec.Cmd
	Stdout *syncBuffer
	Stderr *syncBuffer
	exited chan struct{}
}

// Options tune Start.
type Options struct {
	DataDir string   // reuse a folder (restart tests); default a fresh temp dir
	Extra   []string // extra flags, e.g. "--vault-requests-per-10s=0"
	Env     []string // extra environment variables for the server process
	// Sealed means the server is expected to come up sealed or uninitialized: Start waits for
	// the listener (GET /sys/seal-status) instead of a healthy /health and reads no admin.json.
	Sealed bool
	// CAFile is the CA that signed an operator certificate (--tls-cert-file in Extra): clients
	// trust it instead of the local CA's <data>/tls/ca.pem, which is then never made.
	CAFile string
	// DNSSuffix is passed as --dns-suffix (default vault.localhost); HTTPClient dials names
	// under it on loopback and VaultURL uses it.
	DNSSuffix string
}

// Start launches a server on a free loopback port and waits until /health answers 200. The
// server binds port 0 itself and Start reads the port from its "strongroom listening" log line,
// so no other process can take the port between a pick and the bind.
func Start(t testing.TB, opts *Options) *Server {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	s := &Server{t: t, DataDir: opts.DataDir, Extra: opts.Extra, Env: opts.Env, Sealed: opts.Sealed, CAFile: opts.CAFile, DNSSuffix: opts.DNSSuffix}
	if s.DataDir == "" {
		s.DataDir = filepath.Join(t.TempDir(), "data")
	}
	s.launch()
	t.Cleanup(func() { s.Stop() })
	return s
}

func (s *Server) launch() {
	s.t.Helper()
	s.waitUp(s.spawn())
}

// waitUp waits until the process just spawned serves: its listener when Sealed, a healthy
// /health otherwise (then it reads the admin credential). A server started on port 0 first
// reports the port it bound. A server that could not bind its fixed port (a restart, a cluster
// address picked in advance) because the address is in use is started again a few times.
func (s *Server) waitUp(exited chan struct{}) {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	retries := 5
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			if errOut := s.Stderr.String(); strings.Contains(errOut, "address already in use") && retries > 0 {
				retries--
				time.Sleep(300 * time.Millisecond)
				exited = s.spawn()
				continue
			}
			s.t.Fatalf("server exited during start-up:\n%s", s.Stderr.String())
		default:
		}
		if s.Port == 0 {
			if port, ok := ListeningPort(s.Stderr.String()); ok {
				s.Port, s.URL = port, "https://localhost:"+strconv.Itoa(port)
			} else {
				time.Sleep(20 * time.Millisecond)
				continue
			}
		}
		if s.Sealed && s.listening() {
			return
		}
		if !s.Sealed && s.healthy() {
			s.readAdmin()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("server not healthy after 60s:\n%s", s.Stderr.String())
}

// readAdmin takes the bootstrap credential from --admin-credential-file or <data>/admin.json
// (the file seal) or, for the other seals, which never write it into the data folder, from
// what the first start printed.
// A credential already known (a restart) is kept.
func (s *Server) readAdmin() {
	s.t.Helper()
	if s.Admin.ClientSecret != "" {
		return
	}
	file := filepath.Join(s.DataDir, "admin.json")
	for i, a := range s.Extra {
		if a == "--admin-credential-file" && i+1 < len(s.Extra) {
			file = s.Extra[i+1]
		}
	}
	b, err := os.ReadFile(file)
	if err == nil {
		if err := json.Unmarshal(b, &s.Admin); err != nil {
			s.t.Fatalf("parsing admin.json: %v", err)
		}
		return
	}
	if a, ok := ParsePrintedAdmin(s.Stdout.String()); ok {
		s.Admin = a
		return
	}
	s.t.Fatalf("no admin.json and no printed bootstrap credential: %v\n%s", err, s.Stdout.String())
}

// ParsePrintedAdmin reads the bootstrap credential a first start printed.
func ParsePrintedAdmin(out string) (Admin, bool) {
	var a Admin
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "tenantId":
			a.TenantID = v
		case "subscriptionId":
			a.SubscriptionID = v
		case "clientId":
			a.ClientID = v
		case "clientSecret":
			a.ClientSecret = v
		}
	}
	return a, a.ClientID != "" && a.ClientSecret != ""
}

// ListeningPort reads the port from a server's "strongroom listening" log line (listen=host:port).
func ListeningPort(stderr string) (int, bool) {
	for _, line := range strings.Split(stderr, "\n") {
		if !strings.Contains(line, `msg="strongroom listening"`) {
			continue
		}
		for _, f := range strings.Fields(line) {
			if addr, ok := strings.CutPrefix(f, "listen="); ok {
				_, p, err := net.SplitHostPort(addr)
				if port, perr := strconv.Atoi(p); err == nil && perr == nil && port > 0 {
					return port, true
				}
			}
		}
	}
	return 0, false
}

// spawn starts the process: on port 0 the first time (the server picks the port and derives its
// public URL from it), on the port it got since then, so restarts keep their URL.
func (s *Server) spawn() chan struct{} {
	s.t.Helper()
	args := []string{"server", "--data-dir", s.DataDir, "--listen", "127.0.0.1:" + strconv.Itoa(s.Port), "--dns-suffix", s.dnsSuffix()}
	if s.Port != 0 {
		args = append(args, "--public-url", s.URL)
	}
	args = append(args, s.Extra...)
	cmd := exec.Command(Binary(s.t), args...)
	cmd.Env = append(os.Environ(), s.Env...)
	s.Stdout, s.Stderr = &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = s.Stdout, s.Stderr
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting server: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return exited
}

// StartUnchecked starts a stopped server on its folder and port without waiting for it to
// become healthy (for tests that expect it to refuse to start); see WaitExit.
func (s *Server) StartUnchecked() { s.spawn() }

// WaitExit waits up to within for the process to exit and returns its exit code; exited is false
// when it is still running.
func (s *Server) WaitExit(within time.Duration) (code int, exited bool) {
	s.mu.Lock()
	cmd, ch := s.cmd, s.exited
	s.mu.Unlock()
	select {
	case <-ch:
		return cmd.ProcessState.ExitCode(), true
	case <-time.After(within):
		return 0, false
	}
}

// Healthy reports whether /health answers 200 right now.
func (s *Server) Healthy() bool { return s.healthy() }

func (s *Server) listening() bool {
	pool, err := s.tryPool()
	if err != nil {
		return false
	}
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(s.URL + "/sys/seal-status")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// WaitHealthy waits until /health answers 200 (after an unseal).
func (s *Server) WaitHealthy() {
	s.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if s.healthy() {
			return
		}
	}
	s.t.Fatalf("server not healthy after 30s:\n%s", s.Stderr.String())
}

func (s *Server) healthy() bool {
	pool, err := s.tryPool()
	if err != nil {
		return false
	}
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(s.URL + "/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// PID is the running process id.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

// Stop sends SIGTERM and waits for a clean exit (SIGKILL after 30 s).
func (s *Server) Stop() {
	s.signal(syscall.SIGTERM, 30*time.Second)
}

// Kill sends SIGKILL and waits for the process to be gone.
func (s *Server) Kill() {
	s.signal(syscall.SIGKILL, 10*time.Second)
}

func (s *Server) signal(sig syscall.Signal, wait time.Duration) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// ExitCode is the exit status of a stopped process.
func (s *Server) ExitCode() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.ProcessState.ExitCode()
}

// Restart stops (SIGTERM) and starts the server on the same folder and port.
func (s *Server) Restart() {
	s.Stop()
	s.launch()
}

// StartAgain starts a stopped or killed server on the same folder and port.
func (s *Server) StartAgain() { s.launch() }

// APICAFile is the CA certificate file clients of the API trust: CAFile, or the local CA's.
func (s *Server) APICAFile() string {
	if s.CAFile != "" {
		return s.CAFile
	}
	return filepath.Join(s.DataDir, "tls", "ca.pem")
}

func (s *Server) dnsSuffix() string {
	if s.DNSSuffix != "" {
		return s.DNSSuffix
	}
	return "vault.localhost"
}

func (s *Server) tryPool() (*x509.CertPool, error) {
	b, err := os.ReadFile(s.APICAFile())
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("ca.pem holds no certificate")
	}
	return pool, nil
}

// HTTPClient trusts the server's CA and dials any *.localhost name, and any name under the
// server's DNS suffix, on loopback.
func (s *Server) HTTPClient() *http.Client {
	return s.httpClient(false)
}

// HTTP2Client is HTTPClient speaking HTTP/2, as the SDKs' default transport does: the Go SDK
// sends some $filter values unescaped, which only HTTP/2 carries (a raw space ends an HTTP/1.1
// request target).
func (s *Server) HTTP2Client() *http.Client {
	return s.httpClient(true)
}

func (s *Server) httpClient(h2 bool) *http.Client {
	pool, err := s.tryPool()
	if err != nil {
		s.t.Fatal(err)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.HasSuffix(host, "."+s.dnsSuffix())) {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 64,
		ForceAttemptHTTP2:   h2,
	}
	return &http.Client{Transport: tr}
}

// Credential is a ClientSecretCredential for the bootstrap admin, set up exactly as
// client-recipes.md §1 says a user would.
func (s *Server) Credential(hc *http.Client) azcore.TokenCredential {
	return s.CredentialFor(hc, s.Admin.ClientID, s.Admin.ClientSecret)
}

// CredentialFor builds a credential for another service principal.
func (s *Server) CredentialFor(hc *http.Client, clientID, secret string) azcore.TokenCredential {
	cred, err := azidentity.NewClientSecretCredential(s.Admin.TenantID, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            policy.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: s.URL + "/"}, Transport: hc},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return cred
}

// VaultURL is the data-plane URL of a vault.
func (s *Server) VaultURL(vault string) string {
	return "https://" + strings.ToLower(vault) + "." + s.dnsSuffix() + ":" + strconv.Itoa(s.Port) + "/"
}

// Secrets returns an official azsecrets client for vault, with no client flags beyond the
// transport (the server's challenge makes DisableChallengeResourceVerification unnecessary).
func (s *Server) Secrets(vault string, cred azcore.TokenCredential, hc *http.Client) *azsecrets.Client {
	c, err := azsecrets.NewClient(s.VaultURL(vault), cred, &azsecrets.ClientOptions{
		ClientOptions: policy.ClientOptions{Transport: hc, Retry: policy.RetryOptions{MaxRetries: -1}},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// ARMOptions points the ARM SDK clients at the server.
func (s *Server) ARMOptions(hc *http.Client) *arm.ClientOptions {
	return &arm.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Cloud: cloud.Configuration{
				ActiveDirectoryAuthorityHost: s.URL + "/",
				Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
					cloud.ResourceManager: {Endpoint: s.URL, Audience: "https://management.core.windows.net/"},
				},
			},
			Transport: hc,
		},
		DisableRPRegistration: true,
	}
}

// reservePort picks a free port on ip for an address that must be known before the server
// starts (a cluster address). It picks below the kernel's ephemeral range, which is where every
// port-0 bind and every outgoing connection gets its port, so none of those can take it between
// this check and the server's bind; ports are also never handed out twice in one test process.
// Another process binding the same fixed port is left to waitUp's retry.
func reservePort(t testing.TB, ip string) int {
	t.Helper()
	lo, hi := 20000, ephemeralLow()
	if hi-lo < 1000 {
		lo = 1024 // an unusual range: still below it
	}
	reservedMu.Lock()
	defer reservedMu.Unlock()
	for range 1000 {
		port := lo + rand.IntN(hi-lo)
		if reserved[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		reserved[port] = true
		return port
	}
	t.Fatalf("no free port on %s below %d", ip, hi)
	return 0
}

var (
	reservedMu sync.Mutex
	reserved   = map[int]bool{}
)

// ephemeralLow is the first port of the kernel's ephemeral range (Linux default 32768).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if f := strings.Fields(string(b)); err == nil && len(f) == 2 {
		if n, err := strconv.Atoi(f[0]); err == nil && n > 1024 {
			return n
		}
	}
	return 32768
}

// syncBuffer is a goroutine-safe output buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Sleep pauses briefly while polling for a state change.
func (s *Server) Sleep() { time.Sleep(20 * time.Millisecond) }
