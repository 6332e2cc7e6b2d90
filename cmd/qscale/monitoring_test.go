package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"text/template"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/qscale/qscale/scaler"
	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
)

// The chart ships a Grafana dashboard and alerting rules as plain files; these tests hold them
// to what qscale really exports. Every PromQL expression must parse with Prometheus' own parser,
// read only series that registerMetrics registers (or that kube-state-metrics exports, for the
// few panels that say so), match and group them only by labels they carry, and every alert must
// be configurable through the chart's values.
const (
	dashboardFile = "../../charts/qscale/dashboards/qscale.json"
	alertsFile    = "../../charts/qscale/alerts/qscale.yaml"
	valuesFile    = "../../charts/qscale/values.yaml"
	schemaFile    = "../../charts/qscale/values.schema.json"
)

// kubeStateMetrics are the series of kube-state-metrics that the dashboard may read, with
// their labels: qscale exports no current replica count nor the HPAs' targets.
var kubeStateMetrics = series{
	"kube_deployment_spec_replicas":                   set("namespace", "deployment"),
	"kube_statefulset_replicas":                       set("namespace", "statefulset"),
	"kube_horizontalpodautoscaler_spec_target_metric": set("namespace", "horizontalpodautoscaler", "metric_name", "metric_target_type"),
}

// series maps the name of each series a scrape holds to the names of its labels.
type series map[string]map[string]bool

func set(names ...string) map[string]bool {
	s := map[string]bool{}
	for _, n := range names {
		s[n] = true
	}
	return s
}

// lookup finds a series read by an expression: qscale_* among qscale's, any other among the
// allow-listed exporters'.
func (s series) lookup(name string) (map[string]bool, error) {
	if strings.HasPrefix(name, "qscale_") {
		if l, ok := s[name]; ok {
			return l, nil
		}
		return nil, fmt.Errorf("%s: qscale exports no such series (it exports %s)", name, strings.Join(slices.Sorted(maps.Keys(s)), ", "))
	}
	if l, ok := kubeStateMetrics[name]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("%s: neither a qscale series nor an allow-listed kube-state-metrics one", name)
}

// recorder is a prometheus.Registerer that keeps what is registered with it.
type recorder struct{ collectors []prometheus.Collector }

func (r *recorder) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return nil
}
func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
}
func (r *recorder) Unregister(prometheus.Collector) bool { return false }

// exportedSeries registers qscale's metrics as `qscale run` does, gives every vector one child
// so that a gathering shows it, and names the series a scrape then holds.
func exportedSeries(t *testing.T) series {
	t.Helper()
	rec := &recorder{}
	registerMetrics(rec)
	reg := prometheus.NewPedanticRegistry()
	for _, c := range rec.collectors {
		reg.MustRegister(c)
		if err := instantiate(c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if described := describedFamilies(rec.collectors); len(families) != described {
		t.Fatalf("%d metric families described, %d gathered: teach instantiate the others", described, len(families))
	}
	s := series{}
	for _, mf := range families {
		s.add(mf)
	}
	return s
}

// describedFamilies counts the metric families that collectors describe.
func describedFamilies(collectors []prometheus.Collector) int {
	ch := make(chan *prometheus.Desc)
	go func() {
		for _, c := range collectors {
			c.Describe(ch)
		}
		close(ch)
	}()
	n := 0
	for range ch {
		n++
	}
	return n
}

// instantiate creates one child of a metric vector: a vector without children is not gathered.
// Its number of labels is found by trial, since GetMetricWithLabelValues refuses a wrong one.
// The scaling loop's gauges get one workload with one trigger.
func instantiate(c prometheus.Collector) error {
	var vec *prometheus.MetricVec
	switch v := c.(type) {
	case *scaler.Metrics:
		t := store.Target{Namespace: "x", Kind: store.KindDeployment, Name: "x"}
		tr := sources.Trigger{Type: "x", Name: "x"}
		v.Sampled(t, tr, sources.Sample{}, true)
		v.Decided(t, []sources.Trigger{tr}, policy.Decision{Metrics: make([]policy.Metric, 1)})
		v.ConfigInvalid(t, false, true)
		return nil
	case *prometheus.CounterVec:
		vec = v.MetricVec
	case *prometheus.GaugeVec:
		vec = v.MetricVec
	case *prometheus.HistogramVec:
		vec = v.MetricVec
	case *prometheus.SummaryVec:
		vec = v.MetricVec
	default:
		return nil // a plain metric is gathered as it is
	}
	for n := range 16 {
		if _, err := vec.GetMetricWithLabelValues(slices.Repeat([]string{"x"}, n)...); err == nil {
			return nil
		}
	}
	return errors.New("no number of labels up to 16 fits the vector")
}

// add records the series of a metric family: a histogram is exposed as _bucket (with le),
// _sum and _count, a summary as itself (with quantile), _sum and _count; a counter's name
// already ends in _total.
func (s series) add(mf *dto.MetricFamily) {
	l := map[string]bool{}
	for _, m := range mf.GetMetric() {
		for _, p := range m.GetLabel() {
			l[p.GetName()] = true
		}
	}
	with := func(extra string) map[string]bool {
		c := maps.Clone(l)
		c[extra] = true
		return c
	}
	name := mf.GetName()
	switch mf.GetType() {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		s[name+"_bucket"], s[name+"_sum"], s[name+"_count"] = with("le"), l, l
	case dto.MetricType_SUMMARY:
		s[name], s[name+"_sum"], s[name+"_count"] = with("quantile"), l, l
	default:
		s[name] = l
	}
}

var promQLParser = parser.NewParser(parser.Options{})

// checkPromQL parses expr and checks every series it reads, and the labels it matches and
// groups them by, against known.
func checkPromQL(expr string, known series) []error {
	e, err := promQLParser.ParseExpr(expr)
	if err != nil {
		return []error{err}
	}
	var errs []error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			errs = append(errs, checkSelector(n, known)...)
		case *parser.AggregateExpr:
			errs = append(errs, checkGrouping(n, known)...)
		}
		return nil
	})
	return errs
}

func metricName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

func checkSelector(vs *parser.VectorSelector, known series) []error {
	name := metricName(vs)
	if name == "" {
		return []error{fmt.Errorf("%s: a selector must name its metric", vs)}
	}
	have, err := known.lookup(name)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, m := range vs.LabelMatchers {
		if m.Name != model.MetricNameLabel && !have[m.Name] {
			errs = append(errs, fmt.Errorf("%s: %s has no label %q", vs, name, m.Name))
		}
	}
	return errs
}

// checkGrouping checks that `by` names labels of every series aggregated, where no function
// (label_replace, say) may have added one on the way.
func checkGrouping(a *parser.AggregateExpr, known series) []error {
	if a.Without || len(a.Grouping) == 0 {
		return nil
	}
	var errs []error
	parser.Inspect(a.Expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.Call:
			if n.Func.Name == "label_replace" || n.Func.Name == "label_join" {
				errs = nil
				return errors.New("labels added: stop")
			}
		case *parser.VectorSelector:
			have, err := known.lookup(metricName(n))
			for _, g := range a.Grouping {
				if err == nil && !have[g] {
					errs = append(errs, fmt.Errorf("%s: groups %s by %q, a label it does not have", a, metricName(n), g))
				}
			}
		}
		return nil
	})
	return errs
}

// grafanaVariable matches the dashboard's variables: the interval ones become a duration, the
// others (which stand inside label matchers) a string.
var (
	grafanaInterval = regexp.MustCompile(`\$__(rate_interval|interval|range)\b`)
	grafanaVariable = regexp.MustCompile(`\$\{[^}]*\}|\$[A-Za-z_]\w*`)
	labelValues     = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
)

func withoutGrafanaVariables(expr string) string {
	return grafanaVariable.ReplaceAllString(grafanaInterval.ReplaceAllString(expr, "5m"), "x")
}

type dashboard struct {
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title      string     `json:"title"`
	Type       string     `json:"type"`
	Datasource datasource `json:"datasource"`
	Targets    []struct {
		Expr       string     `json:"expr"`
		Datasource datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // those of a collapsed row
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

var fromVariable = datasource{Type: "prometheus", UID: "${datasource}"}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

func TestDashboardReadsWhatQscaleExports(t *testing.T) {
	known := exportedSeries(t)
	d := readDashboard(t)
	if d.UID == "" {
		t.Error("the dashboard has no uid: Grafana would give it a new one on every load")
	}
	var panels []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			panels = append(panels, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	titles := map[string]bool{}
	for _, p := range panels {
		if titles[p.Title] {
			t.Errorf("two panels are titled %q", p.Title)
		}
		titles[p.Title] = true
		if p.Type == "row" {
			continue
		}
		t.Run(p.Title, func(t *testing.T) {
			if len(p.Targets) == 0 {
				t.Fatal("a panel without queries")
			}
			if p.Datasource != fromVariable {
				t.Errorf("panel data source %+v, want %+v", p.Datasource, fromVariable)
			}
			for _, q := range p.Targets {
				if q.Datasource != fromVariable {
					t.Errorf("query data source %+v, want %+v", q.Datasource, fromVariable)
				}
				for _, err := range checkPromQL(withoutGrafanaVariables(q.Expr), known) {
					t.Errorf("%s\n  in %s", err, q.Expr)
				}
			}
		})
	}
	if len(panels) < 10 {
		t.Errorf("found %d panels: is the dashboard read right?", len(panels))
	}
}

func TestDashboardVariables(t *testing.T) {
	known := exportedSeries(t)
	vars := map[string]string{}
	for _, v := range readDashboard(t).Templating.List {
		vars[v.Name] = v.Type
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var obj struct{ Query string }
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				t.Fatalf("variable %s: query %s", v.Name, v.Query)
			}
			q = obj.Query
		}
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(selector, label)", v.Name, q)
			continue
		}
		selector := withoutGrafanaVariables(m[1])
		for _, err := range checkPromQL(fmt.Sprintf("group by (%s) (%s)", m[2], selector), known) {
			t.Errorf("variable %s: %v", v.Name, err)
		}
	}
	for name, typ := range map[string]string{"datasource": "datasource", "namespace": "query"} {
		if vars[name] != typ {
			t.Errorf("variable %q of type %q, want type %q", name, vars[name], typ)
		}
	}
}

// rule is one rule of alerts/qscale.yaml; its `for` and labels come from the chart's values.
type rule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	Annotations map[string]string `json:"annotations"`
}

func readRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules []rule
	if err := yaml.UnmarshalStrict(b, &rules); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	return rules
}

func TestAlertsReadWhatQscaleExports(t *testing.T) {
	known := exportedSeries(t)
	for _, r := range readRules(t) {
		t.Run(r.Alert, func(t *testing.T) {
			for _, err := range checkPromQL(r.Expr, known) {
				t.Errorf("%s\n  in %s", err, r.Expr)
			}
			e, err := promQLParser.ParseExpr(r.Expr)
			if err != nil {
				return
			}
			l, ok := resultLabels(e, known)
			if !ok {
				t.Fatalf("cannot tell which labels the alert carries: teach resultLabels the shape of %s", r.Expr)
			}
			if got := slices.Sorted(maps.Keys(r.Annotations)); !slices.Equal(got, []string{"description", "summary"}) {
				t.Errorf("annotations %v, want description and summary", got)
			}
			for name, text := range r.Annotations {
				if err := checkAnnotation(text, l); err != nil {
					t.Errorf("annotation %s: %v", name, err)
				}
			}
		})
	}
}

// resultLabels tells the labels of the series an expression returns, for the shapes that
// alerts take.
func resultLabels(e parser.Expr, known series) (map[string]bool, bool) {
	switch e := e.(type) {
	case *parser.ParenExpr:
		return resultLabels(e.Expr, known)
	case *parser.BinaryExpr: // a filter or arithmetic with a number, or one-to-one matching
		if _, ok := e.LHS.(*parser.NumberLiteral); ok {
			return resultLabels(e.RHS, known)
		}
		if m := e.VectorMatching; m != nil && (m.Card != parser.CardOneToOne || len(m.MatchingLabels) > 0) {
			return nil, false
		}
		return resultLabels(e.LHS, known)
	case *parser.AggregateExpr:
		if e.Without {
			return nil, false
		}
		return set(e.Grouping...), true
	case *parser.VectorSelector:
		l, err := known.lookup(metricName(e))
		return l, err == nil
	}
	return nil, false
}

// checkAnnotation executes an annotation as Prometheus would, with the alert's labels: a label
// it names that the alert does not carry fails, as does a function Prometheus lacks among
// those stubbed here (add a stub when an annotation needs another of Prometheus' functions).
func checkAnnotation(text string, alertLabels map[string]bool) error {
	if strings.TrimSpace(text) == "" {
		return errors.New("empty")
	}
	format := func(v any) string { return fmt.Sprint(v) }
	funcs := template.FuncMap{"humanize": format, "humanize1024": format, "humanizeDuration": format,
		"humanizePercentage": format, "humanizeTimestamp": format, "title": format, "toUpper": format, "toLower": format}
	const defs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
	tmpl, err := template.New("").Funcs(funcs).Option("missingkey=error").Parse(defs + text)
	if err != nil {
		return err
	}
	data := struct {
		Labels, ExternalLabels map[string]string
		ExternalURL            string
		Value                  float64
	}{Labels: map[string]string{}, ExternalLabels: map[string]string{}, Value: 0.5}
	for l := range alertLabels {
		data.Labels[l] = "x"
	}
	var out strings.Builder
	return tmpl.Execute(&out, data)
}

// Every rule has its entry in values.yaml and values.schema.json, and every entry its rule.
func TestAlertsAreConfigurable(t *testing.T) {
	var rules []string
	for _, r := range readRules(t) {
		rules = append(rules, r.Alert)
	}
	sort.Strings(rules)
	var values struct {
		PrometheusRule struct {
			Alerts map[string]any `json:"alerts"`
		} `json:"prometheusRule"`
	}
	var schema struct {
		Properties struct {
			PrometheusRule struct {
				Properties struct {
					Alerts struct {
						Properties map[string]any `json:"properties"`
					} `json:"alerts"`
				} `json:"properties"`
			} `json:"prometheusRule"`
		} `json:"properties"`
	}
	valuesYAML, err := os.ReadFile(valuesFile)
	if err != nil {
		t.Fatal(err)
	}
	schemaJSON, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(valuesYAML, &values); err != nil {
		t.Fatalf("%s: %v", valuesFile, err)
	}
	if err := json.Unmarshal(schemaJSON, &schema); err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	for file, names := range map[string][]string{
		valuesFile: slices.Sorted(maps.Keys(values.PrometheusRule.Alerts)),
		schemaFile: slices.Sorted(maps.Keys(schema.Properties.PrometheusRule.Properties.Alerts.Properties)),
	} {
		if !slices.Equal(names, rules) {
			t.Errorf("%s: prometheusRule.alerts has %v, %s has %v", file, names, alertsFile, rules)
		}
	}
}
