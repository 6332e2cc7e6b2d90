// Command qscale is the queue-depth autoscaler: see README.md.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

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

const usage = `usage: %[1]s <command> [flags]

commands:
  run       run the controller, the pollers and the external metrics API
  check     validate the qscale.io annotations of manifests: %[1]s check -f FILE|DIR|- [-o json]
  import-keda
            convert KEDA ScaledObjects into qscale.io annotations: %[1]s import-keda -f FILE|DIR|-
  status    show the state of every scaled workload: %[1]s status [-n NS | -A] [-o wide|json|yaml]
  simulate  replay an arrival trace through the scaling policy and a model of the HPA
  version   print the version

Run "%[1]s <command> --help" for the flags of a command.
`

func main() {
	os.Exit(entry(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// pluginName is the name kubectl finds a plugin by: installed as kubectl-qscale on the PATH,
// qscale answers `kubectl qscale status` as `qscale status`.
const pluginName = "kubectl-qscale"

// entry runs the command line argv, argv[0] included: invoked as kubectl-qscale, qscale
// behaves as itself and names itself "kubectl qscale" in its messages.
func entry(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	prog := "qscale"
	if len(argv) > 0 && strings.TrimSuffix(filepath.Base(argv[0]), ".exe") == pluginName {
		prog = "kubectl qscale"
	}
	if len(argv) > 0 {
		argv = argv[1:]
	}
	return runAs(prog, argv, stdin, stdout, stderr)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runAs("qscale", args, stdin, stdout, stderr)
}

func runAs(prog string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, prog)
		return 2
	}
	switch args[0] {
	case "run":
		return runController(args[1:], stderr)
	case "check":
		return check(args[1:], stdin, stdout, stderr)
	case "import-keda":
		return importKEDA(args[1:], stdin, stdout, stderr)
	case "status":
		return statusCmd(prog, args[1:], stdout, stderr)
	case "simulate":
		return simulate(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "qscale", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprintf(stdout, usage, prog)
		return 0
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n", prog, args[0])
	fmt.Fprintf(stderr, usage, prog)
	return 2
}
