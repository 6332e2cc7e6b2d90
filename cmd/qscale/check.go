package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/qscale/qscale/scaler/spec"
)

// manifestOptions are the flags that qscale check and qscale import-keda share: the manifests
// to read (-f, repeatable) and the output format (-o), one of formats, the first the default.
type manifestOptions struct {
	files   []string
	output  string
	formats []string
}

func (o *manifestOptions) addFlags(fs *pflag.FlagSet, fileHelp, outputHelp string) {
	fs.StringArrayVarP(&o.files, "filename", "f", nil, fileHelp)
	fs.StringVarP(&o.output, "output", "o", o.formats[0], outputHelp)
}

func (o *manifestOptions) validate(args []string) error {
	var errs []error
	if len(o.files) == 0 {
		errs = append(errs, errors.New("-f FILE is required (a file, a directory, or - for standard input)"))
	}
	if len(args) > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q: name manifests with -f", args[0]))
	}
	if !slices.Contains(o.formats, o.output) {
		errs = append(errs, fmt.Errorf("--output must be %s, got %q", strings.Join(o.formats, " or "), o.output))
	}
	return errors.Join(errs...)
}

// parseManifestCommand parses the command line of prog into fs, checks o and opens the
// manifests it names. When ok is false the command ends with code: 0 for --help, 2 for a
// usage error or an input that cannot be opened, told on stderr.
func parseManifestCommand(prog string, fs *pflag.FlagSet, o *manifestOptions, args []string, stdin io.Reader, stderr io.Writer) (inputs []spec.Input, code int, ok bool) {
	err := fs.Parse(args)
	if errors.Is(err, pflag.ErrHelp) {
		return nil, 0, false
	}
	if err == nil {
		err = o.validate(fs.Args())
	}
	if err == nil {
		inputs, err = manifestInputs(o.files, stdin)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return nil, 2, false
	}
	return inputs, 0, true
}

const checkUsage = `usage: qscale check -f FILE|DIR|- [-f ...] [-o text|json]

Validates, offline, the qscale.io annotations of every Deployment and StatefulSet in the
manifests: multi-document YAML or JSON, Lists expanded. A directory is read recursively
(*.yaml, *.yml, *.json; hidden entries skipped); - reads standard input. Secrets in the input
serve authenticationRef. Other objects are skipped and counted; KEDA objects, and qscale.io
annotations where qscale does not read them, are warnings.

Exit status: 0 no errors (warnings allowed), 1 errors found, 2 usage error or unreadable input.

flags:
`

func newCheckFlags(stderr io.Writer) (*pflag.FlagSet, *manifestOptions) {
	o := &manifestOptions{formats: []string{"text", "json"}}
	fs := pflag.NewFlagSet("qscale check", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	o.addFlags(fs, "manifest file, directory (read recursively) or - for standard input (repeatable)", "text or json")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), checkUsage)
		fs.PrintDefaults()
	}
	return fs, o
}

func check(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs, o := newCheckFlags(stderr)
	inputs, code, ok := parseManifestCommand("qscale check", fs, o, args, stdin, stderr)
	if !ok {
		return code
	}
	report, err := spec.CheckManifests(inputs, registry)
	if err != nil {
		fmt.Fprintf(stderr, "qscale check: %v\n", err)
		return 2
	}
	if o.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			fmt.Fprintf(stderr, "qscale check: %v\n", err)
			return 2
		}
	} else {
		printCheckText(stdout, report)
	}
	if report.WithErrors > 0 {
		return 1
	}
	return 0
}

// stdinName names standard input in findings.
const stdinName = "<stdin>"

// manifestInputs reads the manifests that -f names, each file once, in the order given
// (a directory's files in lexical order).
func manifestInputs(paths []string, stdin io.Reader) ([]spec.Input, error) {
	var inputs []spec.Input
	seen := map[string]bool{}
	for _, p := range paths {
		if p == "-" {
			if seen[stdinName] {
				return nil, errors.New("-f - (standard input) is given twice")
			}
			seen[stdinName] = true
			inputs = append(inputs, spec.Input{Name: stdinName, Data: stdin})
			continue
		}
		files, err := manifestFiles(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if seen[f] {
				continue
			}
			seen[f] = true
			data, err := os.ReadFile(f) //nolint:gosec // a manifest the user named
			if err != nil {
				return nil, err
			}
			inputs = append(inputs, spec.Input{Name: f, Data: bytes.NewReader(data)})
		}
	}
	return inputs, nil
}

var manifestExtensions = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// manifestFiles returns path itself when it is a file, whatever its name, and the manifests
// under it when it is a directory: *.yaml, *.yml and *.json, hidden files and directories
// (.git, say) left out.
func manifestFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{filepath.Clean(path)}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case p != path && strings.HasPrefix(d.Name(), "."):
			if d.IsDir() {
				return filepath.SkipDir
			}
		case !d.IsDir() && manifestExtensions[strings.ToLower(filepath.Ext(p))]:
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no .yaml, .yml or .json file in the directory", path)
	}
	return files, nil
}

// printCheckText prints one line per problem, warning and note, each naming the file and the
// object, an ok line per valid workload, then a summary.
func printCheckText(w io.Writer, r *spec.Report) {
	for _, f := range r.Findings {
		where := f.File + ": " + f.Object()
		for _, p := range f.Errors {
			fmt.Fprintf(w, "%s: %s\n", where, p)
		}
		for _, msg := range f.Warnings {
			fmt.Fprintf(w, "%s: warning: %s\n", where, msg)
		}
		if f.Status == spec.StatusOK {
			fmt.Fprintf(w, "%s: ok\n", where)
		}
		for _, msg := range f.NotChecked {
			fmt.Fprintf(w, "%s: not checked: %s\n", where, msg)
		}
	}
	fmt.Fprintf(w, "%d workload(s) checked, %d with errors, %d warning(s); %d Secret(s) read", r.Checked, r.WithErrors, r.Warnings, r.Secrets)
	if len(r.Skipped) > 0 {
		kinds := make([]string, 0, len(r.Skipped))
		for k := range r.Skipped {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for i, k := range kinds {
			kinds[i] = fmt.Sprintf("%d %s", r.Skipped[k], k)
		}
		fmt.Fprintf(w, "; skipped %s", strings.Join(kinds, ", "))
	}
	fmt.Fprintln(w)
}
