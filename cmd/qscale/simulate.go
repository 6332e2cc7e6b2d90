package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/qscale/qscale/scaler"
	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/sim"
)

// simOptions are the flags of qscale simulate.
type simOptions struct {
	traces      []string
	peak        float64
	perReplica  float64
	startup     time.Duration
	target      time.Duration
	interval    time.Duration
	sync        time.Duration
	minReplicas int32
	maxReplicas int32
	thresholds  []float64
	throughput  float64
	output      string
	plot        string
	quiet       bool
}

func newSimFlags(stderr io.Writer) (*pflag.FlagSet, *simOptions) {
	o := &simOptions{}
	fs := pflag.NewFlagSet("qscale simulate", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringArrayVar(&o.traces, "trace", nil, "arrival trace, CSV t_seconds,arrivals_per_second (repeatable)")
	fs.Float64Var(&o.peak, "peak", 1000, "scale each trace so that its highest rate is this many messages/s (0 keeps it as it is)")
	fs.Float64Var(&o.perReplica, "per-replica", 40, "messages/s one ready replica consumes")
	fs.DurationVar(&o.startup, "startup", 30*time.Second, "how long a new replica takes to become ready")
	fs.DurationVar(&o.target, "target", 30*time.Second, "targetBacklogAge, and the age every run is judged against")
	fs.DurationVar(&o.interval, "polling-interval", 10*time.Second, "qscale's polling interval")
	fs.DurationVar(&o.sync, "hpa-sync", 15*time.Second, "the HPA controller's sync period")
	fs.Int32Var(&o.minReplicas, "min-replicas", 1, "qscale.io/min-replicas")
	fs.Int32Var(&o.maxReplicas, "max-replicas", 1000, "qscale.io/max-replicas")
	fs.Float64SliceVar(&o.thresholds, "thresholds", []float64{10, 30, 100, 300, 1000}, "lagThreshold values to run the threshold trigger with")
	fs.Float64Var(&o.throughput, "replica-throughput", 0, "replicaThroughput of the backlog-age trigger (0: learned)")
	fs.StringVarP(&o.output, "output", "o", "table", "table or json")
	fs.StringVar(&o.plot, "plot", "", "write a plot of the backlog-age run and the best threshold run to this .png or .svg file (one per trace, named after it, when there are several)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress on standard error")
	return fs, o
}

func (o *simOptions) validate() error {
	var errs []error
	if len(o.traces) == 0 {
		errs = append(errs, errors.New("--trace is required"))
	}
	if o.output != "table" && o.output != "json" {
		errs = append(errs, fmt.Errorf("--output must be table or json, got %q", o.output))
	}
	if ext := strings.TrimPrefix(filepath.Ext(o.plot), "."); o.plot != "" && ext != "png" && ext != "svg" {
		errs = append(errs, fmt.Errorf("--plot must name a .png or .svg file, got %q", o.plot))
	}
	return errors.Join(append(errs, o.validateModel()...)...)
}

// validateModel checks the flags that describe the workload and its HPA.
func (o *simOptions) validateModel() []error {
	var errs []error
	if o.perReplica <= 0 || o.peak < 0 || o.target < time.Second || o.interval <= 0 || o.sync <= 0 {
		errs = append(errs, errors.New("--per-replica must be above 0, --peak at least 0, --target at least 1s, --polling-interval and --hpa-sync above 0"))
	}
	if o.minReplicas < 0 || o.maxReplicas < max(1, o.minReplicas) {
		errs = append(errs, errors.New("--max-replicas must be at least max(1, --min-replicas)"))
	}
	for _, th := range o.thresholds {
		if th <= 0 {
			errs = append(errs, fmt.Errorf("--thresholds must be above 0, got %v", th))
		}
	}
	return errs
}

// simRow is one run of one trace.
type simRow struct {
	Trace        string  `json:"trace"`
	Policy       string  `json:"policy"`
	Best         bool    `json:"bestThreshold,omitempty"`
	ReplicaHours float64 `json:"replicaHours"`
	FluidHours   float64 `json:"fluidHours"`
	Cost         float64 `json:"costOverFluid"`
	AgeP50       float64 `json:"ageP50Seconds"`
	AgeP95       float64 `json:"ageP95Seconds"`
	AgeP99       float64 `json:"ageP99Seconds"`
	AgeMax       float64 `json:"ageMaxSeconds"`
	OverTarget   float64 `json:"percentOverTarget"`
	Actions      int     `json:"scalingActions"`
}

func simulate(args []string, stdout, stderr io.Writer) int {
	fs, o := newSimFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "qscale simulate: %v\n", err)
		return 2
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "qscale simulate: %v\n", err)
		return 2
	}
	var rows []simRow
	for _, path := range o.traces {
		r, err := o.runTrace(path, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "qscale simulate: %s: %v\n", path, err)
			return 1
		}
		rows = append(rows, r...)
	}
	if o.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			fmt.Fprintf(stderr, "qscale simulate: %v\n", err)
			return 1
		}
		return 0
	}
	printSimTable(stdout, rows, o.target)
	return 0
}

// runTrace runs one trace with every threshold and with targetBacklogAge.
func (o *simOptions) runTrace(path string, stderr io.Writer) ([]simRow, error) {
	tr, err := readTraceFile(path)
	if err != nil {
		return nil, err
	}
	if o.peak > 0 && tr.Peak() > 0 {
		tr = tr.Scaled(o.peak / tr.Peak())
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	buckets := 1500
	var rows []simRow
	var recs []*sim.Recorder
	best := -1
	for _, th := range o.thresholds {
		rec := sim.NewRecorder(fmt.Sprintf("lagThreshold %g", th), int(tr.Duration()), buckets)
		res, err := o.run(tr, policy.NewTrigger(th), nil, rec, "", stderr)
		if err != nil {
			return nil, err
		}
		rows = append(rows, o.row(name, rec.Label, res))
		recs = append(recs, rec)
		if best < 0 || better(rows[len(rows)-1], rows[best]) {
			best = len(rows) - 1
		}
	}
	if best >= 0 {
		rows[best].Best = true
	}
	rec := sim.NewRecorder("targetBacklogAge "+o.target.String(), int(tr.Duration()), buckets)
	age := policy.NewAgeTrigger(policy.BacklogAge{Target: o.target, ReplicaThroughput: o.throughput, PollingInterval: o.interval})
	b := simBehavior(scaler.AgeBehavior())
	res, err := o.run(tr, age, &b, rec, name, stderr)
	if err != nil {
		return nil, err
	}
	rows = append(rows, o.row(name, rec.Label, res))
	if o.plot != "" {
		plotted := []*sim.Recorder{rec}
		if best >= 0 {
			plotted = append([]*sim.Recorder{recs[best]}, rec)
		}
		if err := o.writePlot(name, plotted); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// better reports whether a is a better static threshold than b: over the target for less
// than 1 % of the time and cheaper, or, while neither keeps that, over it less.
func better(a, b simRow) bool {
	const kept = 1.0
	switch aOK, bOK := a.OverTarget <= kept, b.OverTarget <= kept; {
	case aOK && bOK:
		return a.Cost < b.Cost
	case aOK != bOK:
		return aOK
	}
	return a.OverTarget < b.OverTarget
}

func (o *simOptions) run(tr sim.Trace, trigger *policy.Trigger, b *sim.Behavior, rec *sim.Recorder, progress string, stderr io.Writer) (sim.Result, error) {
	spec := policy.Spec{MinReplicas: o.minReplicas, MaxReplicas: o.maxReplicas, PollingInterval: o.interval, CooldownPeriod: 5 * time.Minute,
		FallbackFailures: 3, ScaleUpTolerance: policy.DefaultTolerance, ScaleDownTolerance: policy.DefaultTolerance}
	cfg := sim.Config{Trace: tr, PerReplica: o.perReplica, StartupDelay: o.startup, PollInterval: o.interval, SyncPeriod: o.sync,
		Behavior: b, MinReplicas: o.minReplicas, MaxReplicas: o.maxReplicas, Target: o.target, Trajectory: rec.Add}
	if !o.quiet && progress != "" && tr.Duration() > 24*3600 {
		cfg.Progress = func(done float64) { fmt.Fprintf(stderr, "%s: %3.0f %%\n", progress, 100*done) }
	}
	return sim.Run(cfg, sim.NewQscale(spec, trigger))
}

func (o *simOptions) row(trace, label string, r sim.Result) simRow {
	return simRow{Trace: trace, Policy: label, ReplicaHours: round(r.ReplicaHours, 1), FluidHours: round(r.FluidHours, 1), Cost: round(r.Cost(), 2),
		AgeP50: r.AgeP50.Seconds(), AgeP95: r.AgeP95.Seconds(), AgeP99: r.AgeP99.Seconds(), AgeMax: r.AgeMax.Seconds(),
		OverTarget: round(100*r.OverTarget, 3), Actions: r.Actions}
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func printSimTable(w io.Writer, rows []simRow, target time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "trace\tpolicy\treplica-hours\t× fluid\tage p50\tp95\tp99\tmax\tover %s\tactions\t\n", target)
	for _, r := range rows {
		mark := ""
		if r.Best {
			mark = " (best)"
		}
		fmt.Fprintf(tw, "%s\t%s%s\t%.1f\t%.2f\t%gs\t%gs\t%gs\t%gs\t%.3f %%\t%d\t\n", r.Trace, r.Policy, mark, r.ReplicaHours, r.Cost,
			r.AgeP50, r.AgeP95, r.AgeP99, r.AgeMax, r.OverTarget, r.Actions)
	}
	_ = tw.Flush()
}

func (o *simOptions) writePlot(trace string, recs []*sim.Recorder) error {
	path := o.plot
	if len(o.traces) > 1 {
		ext := filepath.Ext(path)
		path = strings.TrimSuffix(path, ext) + "-" + trace + ext
	}
	f, err := os.Create(path) //nolint:gosec // the file the user asked for
	if err != nil {
		return err
	}
	title := fmt.Sprintf("%s: %g msg/s per replica, %s start-up, %s polling", trace, o.perReplica, o.startup, o.interval)
	if err := sim.Plot(f, strings.TrimPrefix(filepath.Ext(path), "."), title, o.target, recs...); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func readTraceFile(path string) (sim.Trace, error) {
	f, err := os.Open(path) //nolint:gosec // the trace the user named
	if err != nil {
		return sim.Trace{}, err
	}
	defer func() { _ = f.Close() }()
	return sim.ReadTrace(f)
}

// simBehavior converts an HPA behavior to the simulator's, with the HPA's defaults where a
// field is not set.
func simBehavior(b *autoscalingv2.HorizontalPodAutoscalerBehavior) sim.Behavior {
	out := sim.DefaultBehavior()
	if b == nil {
		return out
	}
	rules := func(r *autoscalingv2.HPAScalingRules, into *sim.Rules) {
		if r == nil {
			return
		}
		if r.StabilizationWindowSeconds != nil {
			into.StabilizationWindow = time.Duration(*r.StabilizationWindowSeconds) * time.Second
		}
		if r.SelectPolicy != nil {
			into.SelectPolicy = string(*r.SelectPolicy)
		}
		if r.Tolerance != nil {
			into.Tolerance = r.Tolerance.AsApproximateFloat64()
		}
		if len(r.Policies) > 0 {
			into.Policies = nil
			for _, p := range r.Policies {
				into.Policies = append(into.Policies, sim.ScalingPolicy{Type: sim.PolicyType(p.Type), Value: p.Value, Period: time.Duration(p.PeriodSeconds) * time.Second})
			}
		}
	}
	rules(b.ScaleUp, &out.Up)
	rules(b.ScaleDown, &out.Down)
	return out
}
