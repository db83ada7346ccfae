// Command trivialserver runs the benchmark ceiling, bench.TrivialServer: the endpoints `strongroom
// bench` drives, served from memory (docs/benchmarks.md). It accepts any bearer token, so it is a
// measurement harness, not a product binary, and it listens on loopback only.
//
//	go build -o /tmp/srtriv ./internal/bench/trivialserver
//	/tmp/srtriv --listen 127.0.0.1:9443 --cert-dir /tmp/benchrun/triv
package main

import (
	"fmt"
	"os"

	"github.com/strongroom/strongroom/internal/bench"
)

func main() {
	cmd := bench.NewTrivialCommand()
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "trivialserver:", err)
		os.Exit(1)
	}
}
