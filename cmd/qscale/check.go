package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/qscale/qscale/scaler/spec"
)

func check(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("qscale check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "manifest to check (multi-document YAML or JSON; - for standard input)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" {
		fmt.Fprintln(stderr, "qscale check: -f FILE is required")
		return 2
	}
	in := stdin
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			fmt.Fprintf(stderr, "qscale check: %v\n", err)
			return 2
		}
		defer func() { _ = f.Close() }()
		in = f
	}
	findings, err := spec.CheckManifests(in, registry)
	if err != nil {
		fmt.Fprintf(stderr, "qscale check: %s: %v\n", *file, err)
		return 1
	}
	failed := 0
	for _, f := range findings {
		var se *spec.Error
		switch {
		case f.Err == nil:
			fmt.Fprintf(stdout, "%s: ok\n", f.Object)
		case errors.As(f.Err, &se):
			failed++
			for _, p := range se.Problems {
				fmt.Fprintf(stdout, "%s: %s\n", f.Object, p)
			}
		default:
			failed++
			fmt.Fprintf(stdout, "%s: %v\n", f.Object, f.Err)
		}
	}
	fmt.Fprintf(stdout, "%d workload(s) checked, %d with errors\n", len(findings), failed)
	if failed > 0 {
		return 1
	}
	return 0
}
