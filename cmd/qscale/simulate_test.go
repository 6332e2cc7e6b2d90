package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTrace writes a short bursty trace and returns its path.
func writeTrace(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("t_seconds,arrivals_per_second\n")
	for i := range 60 { // 10 min of 10 s buckets: idle, a ramp, bursts
		rate := 0.0
		switch {
		case i%12 == 5, i%12 == 6:
			rate = 30
		case i > 20 && i < 40:
			rate = float64(i - 20)
		}
		fmt.Fprintf(&b, "%d,%g\n", i*10, rate)
	}
	path := filepath.Join(t.TempDir(), "bursty.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSimulate(t *testing.T) {
	trace := writeTrace(t)
	plot := filepath.Join(t.TempDir(), "run.svg")
	var out, errOut bytes.Buffer
	code := run([]string{"simulate", "--trace", trace, "--peak", "400", "--thresholds", "10,100", "-o", "json", "--plot", plot}, nil, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	checkSimRows(t, out.Bytes())
	if b, err := fs.ReadFile(os.DirFS(filepath.Dir(plot)), filepath.Base(plot)); err != nil || !bytes.HasPrefix(b, []byte("<?xml")) {
		t.Errorf("plot: %v, %.20q", err, b)
	}
	out.Reset()
	if code := run([]string{"simulate", "--trace", trace, "--quiet"}, nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), "targetBacklogAge 30s") || !strings.Contains(out.String(), "× fluid") {
		t.Errorf("table: exit %d\n%s", code, out.String())
	}
}

// checkSimRows checks simulate's JSON: two thresholds then targetBacklogAge, each costing at
// least the fluid bound, one marked the best threshold.
func checkSimRows(t *testing.T, out []byte) {
	t.Helper()
	var rows []simRow
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(rows) != 3 || rows[2].Policy != "targetBacklogAge 30s" {
		t.Fatalf("rows %+v, want two thresholds then targetBacklogAge", rows)
	}
	best := 0
	for _, r := range rows {
		if r.FluidHours <= 0 || r.ReplicaHours < r.FluidHours || r.Cost < 1 {
			t.Errorf("%s: replica-hours %v against a fluid bound of %v", r.Policy, r.ReplicaHours, r.FluidHours)
		}
		if r.Best {
			best++
		}
	}
	if best != 1 {
		t.Errorf("%d rows marked as the best threshold, want 1", best)
	}
}

func TestSimulateRefusesBadFlags(t *testing.T) {
	trace := writeTrace(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no trace", args: nil, want: "--trace is required"},
		{name: "a plot that is no image", args: []string{"--trace", trace, "--plot", "x.gif"}, want: "--plot must name a .png or .svg file"},
		{name: "an output format", args: []string{"--trace", trace, "-o", "yaml"}, want: "--output must be table or json"},
		{name: "a threshold of 0", args: []string{"--trace", trace, "--thresholds", "0"}, want: "--thresholds must be above 0"},
		{name: "an unknown flag", args: []string{"--trace", trace, "--frobnicate"}, want: "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(append([]string{"simulate"}, tt.args...), nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut.String(), tt.want)
			}
		})
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"simulate", "--trace", filepath.Join(t.TempDir(), "missing.csv")}, nil, &out, &errOut); code != 1 {
		t.Errorf("a missing trace: exit %d, want 1", code)
	}
	if code := run([]string{"simulate", "--help"}, nil, &out, &errOut); code != 0 {
		t.Errorf("--help: exit %d, want 0", code)
	}
}
