// Command qscale is the queue-depth autoscaler: see README.md.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/activemq"
	"github.com/qscale/qscale/sources/kafka"
	"github.com/qscale/qscale/sources/rabbitmq"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// registry holds every trigger type qscale knows.
var registry = sources.Registry{
	"activemq": activemq.Kind,
	"kafka":    kafka.Kind,
	"rabbitmq": rabbitmq.Kind,
}

const usage = `usage: qscale <command> [flags]

commands:
  run       run the controller, the pollers and the external metrics API
  check     validate the qscale.io annotations of manifests: qscale check -f FILE|DIR|- [-o json]
  import-keda
            convert KEDA ScaledObjects into qscale.io annotations: qscale import-keda -f FILE|DIR|-
  simulate  replay an arrival trace through the scaling policy and a model of the HPA
  version   print the version

Run "qscale <command> --help" for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runController(args[1:], stderr)
	case "check":
		return check(args[1:], stdin, stdout, stderr)
	case "import-keda":
		return importKEDA(args[1:], stdin, stdout, stderr)
	case "simulate":
		return simulate(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "qscale", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "qscale: unknown command %q\n\n%s", args[0], usage)
	return 2
}
