// Command strongroom is the single Strongroom binary: the server (`strongroom server`), the
// az-style client commands and the load generator. It holds no logic of its own.
package main

import (
	"os"

	"github.com/strongroom/strongroom/internal/bench"
	"github.com/strongroom/strongroom/internal/cli"
	"github.com/strongroom/strongroom/internal/servercmd"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], servercmd.NewServerCommand(), servercmd.NewAuditCommand(), servercmd.NewOperatorExtensions(), bench.NewCommand()))
}
