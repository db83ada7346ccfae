// Command profserver runs the unmodified `strongroom server` command with net/http/pprof served on
// a separate loopback listener, so benchmarks can take CPU profiles of the real server
// (docs/benchmarks.md). It is a measurement harness, not a product binary.
//
//	go build -o /tmp/srprof ./internal/bench/profserver
//	PPROF_ADDR=127.0.0.1:6061 /tmp/srprof --data-dir … --listen 127.0.0.1:18443
//	go tool pprof -top -cum 'http://127.0.0.1:6061/debug/pprof/profile?seconds=10'
//
// PPROF_BLOCK_RATE=n (ns) also turns on the block and mutex profiles.
package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on the default mux, used only by the side listener
	"os"
	"runtime"
	"strconv"

	"github.com/strongroom/strongroom/internal/servercmd"
)

func main() {
	addr := os.Getenv("PPROF_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6061"
	}
	// Loopback only: profiles expose memory contents.
	if host, _, err := net.SplitHostPort(addr); err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintf(os.Stderr, "profserver: PPROF_ADDR must be a loopback host:port, got %q\n", addr)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "profserver: listening for pprof: %v\n", err)
		os.Exit(1)
	}
	// Contention profiles cost a little on every blocking event, so they are opt-in.
	if n, err := strconv.Atoi(os.Getenv("PPROF_BLOCK_RATE")); err == nil && n > 0 {
		runtime.SetBlockProfileRate(n)
		runtime.SetMutexProfileFraction(100)
	}
	go http.Serve(ln, nil)
	cmd := servercmd.NewServerCommand()
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "server" { // as `bench scale --server-binary` starts it
		args = args[1:]
	}
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		os.Exit(1)
	}
}
