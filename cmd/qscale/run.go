package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/cmd/options"

	"github.com/qscale/qscale/metricsapi"
	"github.com/qscale/qscale/scaler"
)

type runOptions struct {
	kubeconfig, namespace   string
	leaderElect             bool
	leaderElectionNamespace string
	metricsAddr, probeAddr  string
	qps                     float32
	burst                   int
	adapter                 *basecmd.AdapterBase
}

func newRunFlags(stderr io.Writer) (*pflag.FlagSet, *runOptions) {
	fs := pflag.NewFlagSet("qscale run", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &runOptions{adapter: &basecmd.AdapterBase{Name: "qscale", FlagSet: fs}}
	o.adapter.CustomMetricsAdapterServerOptions = options.NewCustomMetricsAdapterServerOptions()
	o.adapter.SecureServing.BindPort = 6443
	o.adapter.SecureServing.ServerCert.CertDirectory = "" // a self-signed certificate in memory unless --cert-dir or --tls-cert-file
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to scale in (default: in-cluster); also the default of --lister-kubeconfig, --authentication-kubeconfig and --authorization-kubeconfig")
	fs.StringVar(&o.namespace, "namespace", "", "watch only the workloads of this namespace (default: all namespaces)")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader among replicas; only the leader writes to the cluster")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: qscale's own namespace in-cluster)")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus /metrics endpoint (0 disables it)")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints")
	fs.Float32Var(&o.qps, "kube-api-qps", 50, "requests per second to the Kubernetes API (HPAs, scale, Events)")
	fs.IntVar(&o.burst, "kube-api-burst", 100, "burst of requests to the Kubernetes API")
	o.adapter.InstallFlags()
	return fs, o
}

func runController(args []string, stderr io.Writer) int {
	fs, o := newRunFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "qscale run: %v\n", err)
		return 2
	}
	ctrl.SetLogger(zap.New())
	if err := o.run(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintf(stderr, "qscale run: %v\n", err)
		return 1
	}
	return 0
}

func (o *runOptions) run(ctx context.Context) error {
	a := o.adapter
	for _, f := range []*string{&a.RemoteKubeConfigFile, &a.Authentication.RemoteKubeConfigFile, &a.Authorization.RemoteKubeConfigFile} {
		if *f == "" {
			*f = o.kubeconfig
		}
	}
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = o.qps, o.burst
	mgrOpts := ctrl.Options{
		Metrics:                 metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:  o.probeAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "qscale.io",
		LeaderElectionNamespace: o.leaderElectionNamespace,
	}
	if o.namespace != "" {
		mgrOpts.Cache = cache.Options{DefaultNamespaces: map[string]cache.Config{o.namespace: {}}}
	}
	mgr, err := ctrl.NewManager(cfg, mgrOpts)
	if err != nil {
		return err
	}
	store, err := scaler.Setup(mgr, registry, scaler.NewMetrics(ctrlmetrics.Registry), mgr.GetEventRecorder("qscale"))
	if err != nil {
		return err
	}
	a.WithExternalMetrics(metricsapi.NewProvider(storeValues{store}))
	apiCfg, err := a.Config()
	if err != nil {
		return fmt.Errorf("metrics API: %w", err)
	}
	metricsapi.Instrumented(apiCfg.GenericConfig, metricsapi.NewMetrics(ctrlmetrics.Registry))
	srv, err := a.Server()
	if err != nil {
		return fmt.Errorf("metrics API: %w", err)
	}
	if err := mgr.Add(everyReplica(func(ctx context.Context) error {
		return srv.GenericAPIServer.PrepareRun().RunWithContext(ctx)
	})); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("caches", func(*http.Request) error {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(wctx) {
			return errors.New("informer caches are not synced")
		}
		return nil
	}); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

func (o *runOptions) restConfig() (*rest.Config, error) {
	if o.kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	}
	return ctrl.GetConfig()
}

// everyReplica is a Runnable that runs on every replica, elected or not.
type everyReplica func(context.Context) error

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (everyReplica) NeedLeaderElection() bool { return false }

// storeValues lets the metrics API read the scaler's Store.
type storeValues struct{ store *scaler.Store }

func (v storeValues) Value(w metricsapi.Workload, metric string) (int64, time.Time, error) {
	milli, at, err := v.store.Value(scaler.Target{Namespace: w.Namespace, Kind: w.Kind, Name: w.Name}, metric)
	switch {
	case errors.Is(err, scaler.ErrUnknownMetric):
		return 0, at, metricsapi.ErrUnknownMetric
	case errors.Is(err, scaler.ErrNoValue):
		return 0, at, fmt.Errorf("%w: %v", metricsapi.ErrNoValue, err) //nolint:errorlint // one error kind is kept: the metrics API's
	}
	return milli, at, err
}

func (v storeValues) MetricNames() []string { return v.store.MetricNames() }
