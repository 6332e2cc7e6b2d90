package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/pflag"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	externalmetrics "k8s.io/metrics/pkg/client/external_metrics"

	"github.com/qscale/qscale/metricsapi"
	"github.com/qscale/qscale/scaler"
	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/scaler/status"
	"github.com/qscale/qscale/scaler/store"
)

// statusOptions are the flags of qscale status, in the style of kubectl get.
type statusOptions struct {
	namespace     string
	allNamespaces bool
	output        string
	kubeconfig    string
	context       string
}

const statusUsage = `usage: %[1]s status [-n NAMESPACE | -A] [-o wide|json|yaml] [--kubeconfig FILE] [--context NAME]

Lists every Deployment and StatefulSet with qscale.io/triggers and the state qscale records on
it (the qscale.io/status annotation): whether its configuration is valid (READY), whether a
trigger is active, in fallback, or the workload paused, its desired/current replicas, and how
long ago the latest of those changed. -o wide adds each trigger's raw value over its target,
read through the external metrics API (<unknown> when that read fails), and why a workload is
not ready. The kubeconfig is found as kubectl finds it: --kubeconfig, $KUBECONFIG, then
~/.kube/config.

Exit status: 0 listed (even none), 1 the API server could not be read, 2 usage error.

flags:
`

func newStatusFlags(prog string, stderr io.Writer) (*pflag.FlagSet, *statusOptions) {
	o := &statusOptions{}
	fs := pflag.NewFlagSet(prog+" status", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVarP(&o.namespace, "namespace", "n", "", "namespace to list (default: the kubeconfig context's, else default)")
	fs.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "list the workloads of every namespace")
	fs.StringVarP(&o.output, "output", "o", "", "wide, json or yaml (default: a table)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&o.context, "context", "", "kubeconfig context (default: the current context)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), statusUsage, prog)
		fs.PrintDefaults()
	}
	return fs, o
}

func (o *statusOptions) validate(args []string) error {
	var errs []error
	if len(args) > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q", args[0]))
	}
	switch o.output {
	case "", "wide", "json", "yaml":
	default:
		errs = append(errs, fmt.Errorf("--output must be wide, json or yaml, got %q", o.output))
	}
	if o.allNamespaces && o.namespace != "" {
		errs = append(errs, errors.New("--namespace and --all-namespaces exclude each other"))
	}
	return errors.Join(errs...)
}

// statusCmd is qscale status; prog is the name the user typed it by ("kubectl qscale" as a
// kubectl plugin).
func statusCmd(prog string, args []string, stdout, stderr io.Writer) int {
	fs, o := newStatusFlags(prog, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s status: %v\n", prog, err)
		return 2
	}
	if err := o.validate(fs.Args()); err != nil {
		fmt.Fprintf(stderr, "%s status: %v\n", prog, err)
		return 2
	}
	clients, namespace, err := o.clients()
	if err != nil {
		fmt.Fprintf(stderr, "%s status: %v\n", prog, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := gatherStatus(ctx, clients, namespace, o.output != "")
	if err != nil {
		fmt.Fprintf(stderr, "%s status: %v\n", prog, err)
		return 1
	}
	if len(rows) == 0 && o.output != "json" && o.output != "yaml" {
		where := "in namespace " + namespace
		if namespace == "" {
			where = "in any namespace"
		}
		fmt.Fprintf(stderr, "No Deployment or StatefulSet with qscale.io/triggers found %s.\n", where)
		return 0
	}
	if err := printStatus(stdout, rows, o.output, o.allNamespaces, time.Now()); err != nil {
		fmt.Fprintf(stderr, "%s status: %v\n", prog, err)
		return 1
	}
	return 0
}

// statusClients are what qscale status reads: the cluster's objects, and external metrics.
type statusClients struct {
	kube    kubernetes.Interface
	metrics externalmetrics.ExternalMetricsClient
}

// clients builds the clients from the kubeconfig, found by client-go's loading rules as
// kubectl finds it, and returns the namespace to list ("" for all).
func (o *statusOptions) clients() (statusClients, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.context}
	overrides.Context.Namespace = o.namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return statusClients{}, "", err
	}
	// One read of each workload's metrics: many workloads, many reads, and client-go's
	// default of 5 a second would make a cluster's listing take minutes.
	cfg.QPS, cfg.Burst, cfg.Timeout = 50, 100, 30*time.Second
	namespace := ""
	if !o.allNamespaces {
		if namespace, _, err = cc.Namespace(); err != nil {
			return statusClients{}, "", err
		}
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return statusClients{}, "", err
	}
	metrics, err := externalmetrics.NewForConfig(cfg)
	if err != nil {
		return statusClients{}, "", err
	}
	return statusClients{kube: kube, metrics: metrics}, namespace, nil
}

// workloadStatus is one workload in qscale status's output; -o json and -o yaml print it as is.
type workloadStatus struct {
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	// Status is the workload's qscale.io/status annotation, read; nil when it has none.
	Status *status.Status `json:"status"`
	// Unknown says why Status does not describe the workload as it is, when it does not.
	Unknown  string         `json:"unknown,omitempty"`
	Replicas replicaCounts  `json:"replicas"`
	Values   []triggerValue `json:"values,omitempty"`
}

// replicaCounts are the replicas asked for (by qscale's HPA, or the workload's spec when
// it has none) and those the workload has.
type replicaCounts struct {
	Desired int32 `json:"desired"`
	Current int32 `json:"current"`
}

// triggerValue is a trigger's raw value, as the external metrics API serves it.
type triggerValue struct {
	Trigger string `json:"trigger"`
	// Value is the raw value as a decimal; "" when it could not be read.
	Value  string `json:"value,omitempty"`
	Target string `json:"target"`
	Error  string `json:"error,omitempty"`
}

// gatherStatus lists the workloads with triggers in namespace ("" for all), with the HPAs
// qscale owns for them; with values, it also reads each trigger's raw value.
func gatherStatus(ctx context.Context, c statusClients, namespace string, values bool) ([]workloadStatus, error) {
	deployments, err := c.kube.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Deployments: %w", err)
	}
	statefulSets, err := c.kube.AppsV1().StatefulSets(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing StatefulSets: %w", err)
	}
	hpas, err := c.kube.AutoscalingV2().HorizontalPodAutoscalers(namespace).List(ctx,
		metav1.ListOptions{LabelSelector: scaler.LabelManagedBy + "=" + scaler.ManagedByQscale})
	if err != nil {
		return nil, fmt.Errorf("listing HorizontalPodAutoscalers: %w", err)
	}
	desired := desiredReplicas(hpas.Items)
	var rows []workloadStatus
	add := func(meta metav1.ObjectMeta, kind string, replicas *int32, current int32) {
		if !spec.HasTriggers(meta.Annotations) {
			return
		}
		w := workloadStatus{Namespace: meta.Namespace, Kind: kind, Name: meta.Name, Replicas: replicaCounts{Desired: 1, Current: current}}
		if replicas != nil { // a workload without an HPA: paused, or never valid
			w.Replicas.Desired = *replicas
		}
		if d, ok := desired[workloadKey(meta.Namespace, kind, meta.Name)]; ok {
			w.Replicas.Desired = d
		}
		w.Status, w.Unknown = readStatus(meta.Annotations)
		rows = append(rows, w)
	}
	for _, d := range deployments.Items {
		add(d.ObjectMeta, "Deployment", d.Spec.Replicas, d.Status.Replicas)
	}
	for _, s := range statefulSets.Items {
		add(s.ObjectMeta, "StatefulSet", s.Spec.Replicas, s.Status.Replicas)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].key() < rows[j].key() })
	if values {
		readValues(c.metrics, rows)
	}
	return rows, nil
}

// desiredReplicas maps each workload that one of qscale's HPAs scales, by its key, to the
// replicas the HPA asks for.
func desiredReplicas(hpas []autoscalingv2.HorizontalPodAutoscaler) map[string]int32 {
	desired := map[string]int32{}
	for _, h := range hpas {
		ref := h.Spec.ScaleTargetRef
		if h.Name == scaler.HPAName(ref.Name) {
			desired[workloadKey(h.Namespace, ref.Kind, ref.Name)] = h.Status.DesiredReplicas
		}
	}
	return desired
}

// workloadKey orders and finds workloads: by namespace, kind, then name. The separator sorts
// before any character a name may hold, so that "shop" comes before "shop-eu".
func workloadKey(namespace, kind, name string) string {
	return namespace + "\x00" + kind + "\x00" + name
}

func (w workloadStatus) key() string { return workloadKey(w.Namespace, w.Kind, w.Name) }

// readStatus reads a workload's status annotation, and says why it cannot be trusted when it
// cannot: absent, unreadable, or written for annotations that have changed since.
func readStatus(annotations map[string]string) (*status.Status, string) {
	v, ok := annotations[status.Annotation]
	if !ok {
		return nil, "no status yet: qscale has not reconciled the workload (is it running, and watching this namespace?)"
	}
	s, err := status.Parse(v)
	if err != nil {
		return nil, "the status annotation is not qscale's: " + err.Error()
	}
	if s.Observed != spec.ConfigDigest(annotations) {
		return s, "the qscale.io annotations changed since qscale wrote the status"
	}
	return s, ""
}

// valueReaders bounds the metric reads in flight.
const valueReaders = 8

// readValues reads the raw value of every trigger of every row, a few at a time. A read that
// fails leaves its value empty with the error: values are an aid, and a missing one (no right
// to read external metrics, qscale not serving yet) must not hide the rest.
func readValues(client externalmetrics.ExternalMetricsClient, rows []workloadStatus) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, valueReaders)
	for i := range rows {
		w := &rows[i]
		if w.Status == nil {
			continue
		}
		w.Values = make([]triggerValue, len(w.Status.Triggers))
		for j, tr := range w.Status.Triggers {
			v := &w.Values[j]
			v.Trigger, v.Target = tr.Name, tr.Target
			if tr.TargetBacklogAge != "" {
				v.Target = tr.TargetBacklogAge
			}
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				v.Value, v.Error = readValue(client, w, tr.Name)
			})
		}
	}
	wg.Wait()
}

// readValue reads one trigger's raw value: the HPA's metric, with qscale.io/raw=true added to
// its selector.
func readValue(client externalmetrics.ExternalMetricsClient, w *workloadStatus, trigger string) (value, errText string) {
	kind := store.KindDeployment
	if w.Kind == "StatefulSet" {
		kind = store.KindStatefulSet
	}
	selector := labels.SelectorFromSet(labels.Set{
		metricsapi.LabelKind: kind, metricsapi.LabelName: scaler.NameLabel(w.Name), metricsapi.LabelRaw: "true",
	})
	list, err := client.NamespacedMetrics(w.Namespace).List(store.MetricName(trigger), selector)
	switch {
	case err != nil:
		return "", err.Error()
	case len(list.Items) != 1:
		return "", fmt.Sprintf("%d values served, want 1", len(list.Items))
	}
	return strconv.FormatFloat(float64(list.Items[0].Value.MilliValue())/1000, 'f', -1, 64), ""
}
