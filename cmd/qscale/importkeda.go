package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/qscale/qscale/scaler/keda"
	"github.com/qscale/qscale/scaler/spec"
)

// importKEDAOptions are the flags of qscale import-keda.
type importKEDAOptions struct {
	manifestOptions
	allowPartial bool
}

const importKEDAUsage = `usage: qscale import-keda -f FILE|DIR|- [-f ...] [-o yaml|json] [--allow-partial]

Converts each KEDA ScaledObject of the input into qscale.io annotations on the Deployment or
StatefulSet it scales. Input is read as qscale check reads it; the TriggerAuthentications,
ClusterTriggerAuthentications, workloads and Secrets of the input are used: a trigger's
credentials become authenticationRef.secretTargetRef, reading the same Secrets.

Output (-o yaml, the default): on standard output, one object per converted ScaledObject, the
workload itself with the annotations when the input holds it, otherwise an apps/v1 object with
only its name, namespace and annotations, for kubectl patch or a server-side apply; on standard
error, per ScaledObject, what could not be converted and why. -o json prints one JSON report
with every conversion, its object and what was not converted, on standard output.

Exit status: 0 everything converted, 1 something could not be converted (what could is still
printed; --allow-partial makes this 0), 2 usage error or unreadable input.

flags:
`

func newImportKEDAFlags(stderr io.Writer) (*pflag.FlagSet, *importKEDAOptions) {
	o := &importKEDAOptions{manifestOptions: manifestOptions{formats: []string{"yaml", "json"}}}
	fs := pflag.NewFlagSet("qscale import-keda", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	o.addFlags(fs, "KEDA manifest file, directory (read recursively) or - for standard input (repeatable)",
		"yaml (objects on standard output, report on standard error) or json (one report on standard output)")
	fs.BoolVar(&o.allowPartial, "allow-partial", false, "exit 0 when some fields or objects could not be converted")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), importKEDAUsage)
		fs.PrintDefaults()
	}
	return fs, o
}

func importKEDA(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs, o := newImportKEDAFlags(stderr)
	inputs, code, ok := parseManifestCommand("qscale import-keda", fs, &o.manifestOptions, args, stdin, stderr)
	if !ok {
		return code
	}
	manifests, unreadable, err := spec.ReadManifests(inputs)
	if err != nil {
		fmt.Fprintf(stderr, "qscale import-keda: %v\n", err)
		return 2
	}
	result := keda.Convert(manifests, registry)
	result.Unreadable = unreadable
	if o.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(result)
	} else {
		err = result.WriteObjects(stdout)
		printImportReport(stderr, result)
	}
	if err != nil {
		fmt.Fprintf(stderr, "qscale import-keda: %v\n", err)
		return 2
	}
	switch {
	case len(result.Conversions) == 0 && len(unreadable) == 0:
		fmt.Fprintln(stderr, "qscale import-keda: no KEDA ScaledObject in the input")
		return 1
	case result.Complete(), o.allowPartial && len(unreadable) == 0:
		return 0
	}
	return 1
}

// printImportReport prints, per KEDA object, what became of it and every field that was not
// converted, then a summary.
func printImportReport(w io.Writer, r *keda.Result) {
	for _, f := range r.Unreadable {
		for _, p := range f.Errors {
			fmt.Fprintf(w, "%s: %s: %s\n", f.File, f.Object(), p)
		}
	}
	counts := map[string]int{}
	for _, c := range r.Conversions {
		counts[c.Status]++
		where := fmt.Sprintf("%s: %s %s", c.File, c.Kind, namespaced(c.Namespace, c.Name))
		if c.Target != nil {
			where += fmt.Sprintf(" → %s %s", c.Target.Kind, namespaced(c.Target.Namespace, c.Target.Name))
		}
		for _, u := range c.Unmapped {
			fmt.Fprintf(w, "%s: not converted: %s\n", where, u)
		}
		for _, p := range c.Invalid {
			fmt.Fprintf(w, "%s: invalid: %s\n", where, p)
		}
		for _, n := range c.NotChecked {
			fmt.Fprintf(w, "%s: not checked: %s\n", where, n)
		}
		fmt.Fprintf(w, "%s: %s\n", where, statusText(c))
	}
	fmt.Fprintf(w, "%d KEDA object(s): %d converted, %d in part, %d not converted\n",
		len(r.Conversions), counts[keda.StatusConverted], counts[keda.StatusPartial], counts[keda.StatusFailed])
}

func statusText(c keda.Conversion) string {
	switch c.Status {
	case keda.StatusConverted:
		return "converted"
	case keda.StatusPartial:
		return "converted in part: apply it only if what was left out is not needed"
	}
	return "not converted: nothing to apply"
}

func namespaced(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return strings.Join([]string{namespace, name}, "/")
}
