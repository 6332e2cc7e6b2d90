package main

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/cmd/options"

	"github.com/qscale/qscale/internal/leader"
	"github.com/qscale/qscale/internal/shard"
	"github.com/qscale/qscale/metricsapi"
	"github.com/qscale/qscale/scaler"
	"github.com/qscale/qscale/scaler/share"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/scaler/workload"
)

type runOptions struct {
	kubeconfig, namespace   string
	leaderElect             bool
	leaderElectionNamespace string
	lease                   leader.Config
	secretRefresh           time.Duration
	peerAddress             string
	metricsAddr, probeAddr  string
	qps                     float32
	burst                   int
	log                     *logOptions
	forward                 forwardOptions
	adapter                 *basecmd.AdapterBase
}

// newRunFlags returns the flags of qscale run: qscale's own, then those of the embedded
// metrics API server, which --help lists apart under their own heading.
func newRunFlags(stderr io.Writer) (*pflag.FlagSet, *runOptions) {
	fs := pflag.NewFlagSet("qscale run", pflag.ContinueOnError)
	own := pflag.NewFlagSet("qscale run", pflag.ContinueOnError)
	api := pflag.NewFlagSet("metrics API server", pflag.ContinueOnError)
	o := &runOptions{log: newLogOptions(), adapter: &basecmd.AdapterBase{Name: "qscale", FlagSet: api}}
	o.adapter.CustomMetricsAdapterServerOptions = options.NewCustomMetricsAdapterServerOptions()
	o.adapter.SecureServing.BindPort = 6443
	o.adapter.SecureServing.ServerCert.CertDirectory = "" // a self-signed certificate in memory unless --cert-dir or --tls-cert-file
	o.adapter.Authorization.AllowCacheTTL = authorizedTTL
	o.addFlags(own)
	o.adapter.InstallFlags()
	fs.AddFlagSet(own)
	fs.AddFlagSet(api)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: qscale run [flags]\n\nFlags:\n%s\n%s:\n%s", own.FlagUsages(), apiFlagsTitle, api.FlagUsages())
	}
	return fs, o
}

// authorizedTTL is how long the metrics API remembers that a caller may read a metric
// (--authorization-webhook-cache-authorized-ttl), as kube-apiserver's webhook authorizer does
// by default. The library's 10 s would cost a SubjectAccessReview per workload every 10 s,
// since each HPA's read names its workload in the label selector that is authorized: 90 a
// second for 900 HPAs. A revoked permission takes this long to apply to a caller already
// allowed; refusals are remembered 10 s, as before.
const authorizedTTL = 5 * time.Minute

// apiFlagsTitle heads the flags of the embedded metrics API server in qscale run --help.
const apiFlagsTitle = "Metrics API server flags (serving, authentication, authorization, audit, …)"

func (o *runOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to scale in (default: in-cluster); also the default of --lister-kubeconfig, --authentication-kubeconfig and --authorization-kubeconfig")
	fs.StringVar(&o.namespace, "namespace", "", "watch only the workloads of this namespace (default: all namespaces)")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader among replicas; only the leader writes to the cluster")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: qscale's own namespace in-cluster)")
	fs.DurationVar(&o.lease.LeaseDuration, "leader-elect-lease-duration", leader.DefaultLeaseDuration, "how long the other replicas wait after the leader's last renewal before one takes over")
	fs.DurationVar(&o.lease.RenewDeadline, "leader-elect-renew-deadline", leader.DefaultRenewDeadline, "how long the leader tries to renew its Lease before it stops writing (less than the lease duration)")
	fs.DurationVar(&o.lease.RetryPeriod, "leader-elect-retry-period", leader.DefaultRetryPeriod, "pause between attempts to take or renew the Lease")
	fs.StringVar(&o.peerAddress, "peer-address", "", "host or host:port at which the other replicas reach this one's metrics API server (port: --secure-port); with --leader-elect, replicas that set it share the polling: each broker connection is polled by one live replica, which sends the samples to the others")
	fs.DurationVar(&o.secretRefresh, "secret-refresh-interval", scaler.DefaultSecretRefresh, "how often the Secrets that triggers name are read again (qscale reads them by name and never watches Secrets)")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus /metrics endpoint (0 disables it)")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints")
	fs.Float32Var(&o.qps, "kube-api-qps", 50, "requests per second to the Kubernetes API (HPAs, scale, Events)")
	fs.IntVar(&o.burst, "kube-api-burst", 100, "burst of requests to the Kubernetes API")
	o.log.addFlags(fs)
	o.forward.addFlags(fs)
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
	if err := o.forward.validate(); err != nil {
		fmt.Fprintf(stderr, "qscale run: %v\n", err)
		return 2
	}
	if o.peerAddress != "" && !o.leaderElect {
		fmt.Fprintln(stderr, "qscale run: --peer-address needs --leader-elect: replicas share the polling only when one of them leads")
		return 2
	}
	logger := o.log.logger(stderr)
	ctrl.SetLogger(logger)
	klog.SetLogger(logger) // client-go's and the API server's logs, in the same level and format
	setMemoryLimit(logger)
	setGCPercent(logger)
	if err := o.run(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintf(stderr, "qscale run: %v\n", err)
		return 1
	}
	return 0
}

// setMemoryLimit makes 90% of the container's memory limit (its cgroup's) the Go runtime's
// soft limit, unless GOMEMLIMIT is set or AUTOMEMLIMIT=off. Without it the garbage collector
// lets the heap grow to twice what is live before it collects, whatever the limit: with
// 10,000 workloads that headroom alone takes qscale past the chart's 512 MiB, and the kernel
// kills it. With it, the collector works harder near the limit instead.
// The options replace where the limit is read from, for tests.
func setMemoryLimit(logger logr.Logger, opts ...memlimit.Option) {
	limit, err := memlimit.Set(opts...)
	switch {
	case err != nil:
		logger.Error(err, "reading the container's memory limit; the Go runtime has no soft limit")
	case limit < math.MaxInt64:
		logger.Info("memory limit", "GOMEMLIMIT", limit)
	}
}

// gcPercent is qscale's garbage collection target (GOGC) unless GOGC is set: a collection
// once the heap has grown by half of what the last one found live, not by all of it, the
// runtime's default. Nearly all qscale holds lives as long as the process (the cached
// workloads and HPAs, each workload's configuration and samples), so the headroom is what
// grows with the cluster beyond it. It trades CPU for memory: with 10,000 workloads, 61 MiB
// less resident memory (343 against 404 MiB) for 0.08 of a core more (BENCHMARKS.md).
const gcPercent = 50

// setGCPercent makes gcPercent the runtime's GOGC unless the environment sets GOGC.
func setGCPercent(logger logr.Logger) {
	if v := os.Getenv("GOGC"); v != "" {
		logger.Info("garbage collection target", "GOGC", v)
		return
	}
	debug.SetGCPercent(gcPercent)
	logger.Info("garbage collection target", "GOGC", gcPercent)
}

// registerMetrics registers with reg every Prometheus metric of qscale's own: the scaling
// loop's and the metrics API's. The chart's Grafana dashboard and alerting rules are checked
// against what it registers (monitoring_test.go).
func registerMetrics(reg prometheus.Registerer) (*scaler.Metrics, *metricsapi.Metrics, *share.Metrics) {
	return scaler.NewMetrics(reg), metricsapi.NewMetrics(reg), share.NewMetrics(reg)
}

func (o *runOptions) run(ctx context.Context) error {
	mgr, cfg, err := o.manager(ctx)
	if err != nil {
		return err
	}
	a := o.adapter
	identity, err := replicaIdentity()
	if err != nil {
		return err
	}
	isLeader, err := o.elect(mgr, cfg, identity)
	if err != nil {
		return err
	}
	loopMetrics, apiMetrics, shareMetrics := registerMetrics(ctrlmetrics.Registry)
	// The metrics API server's configuration comes first: its serving certificate is what a
	// member's Lease names.
	var loop *scaler.Loop
	values := &storeValues{} // its Store is set below, before anything reads it
	a.WithExternalMetrics(metricsapi.NewProvider(values))
	apiCfg, err := a.Config()
	if err != nil {
		return fmt.Errorf("metrics API: %w", err)
	}
	opts := scaler.Options{
		Registry: registry, Metrics: loopMetrics, Recorder: mgr.GetEventRecorder("qscale"),
		IsLeader: isLeader, SecretRefresh: o.secretRefresh,
		// A fifth of the API server budget for statuses, which are informational: the HPA
		// and scale writes keep the rest.
		StatusQPS: float64(o.qps) / 5,
	}
	if o.sharing() {
		members, err := o.members(mgr, cfg, identity, apiCfg.GenericConfig.SecureServing, func() { loop.Reshard() })
		if err != nil {
			return err
		}
		opts.Members, opts.Identity, opts.PeerClient, opts.ShareMetrics = members, identity, share.PinnedClients(cfg), shareMetrics
	}
	if loop, err = scaler.Setup(mgr, opts); err != nil {
		return err
	}
	values.store = loop.Store
	metricsapi.Instrumented(apiCfg.GenericConfig, apiMetrics)
	if err := o.forward.apply(apiCfg.GenericConfig, cfg, apiMetrics); err != nil {
		return err
	}
	srv, err := a.Server()
	if err != nil {
		return fmt.Errorf("metrics API: %w", err)
	}
	if o.sharing() { // behind the server's authentication and authorization, as every path
		srv.GenericAPIServer.Handler.NonGoRestfulMux.Handle(share.Path, loop.Samples)
	}
	if err := mgr.Add(everyReplica(func(ctx context.Context) error {
		return srv.GenericAPIServer.PrepareRun().RunWithContext(ctx)
	})); err != nil {
		return err
	}
	if err := addProbes(ctx, mgr); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// manager is the controller manager of this process, once its API server answers, with the
// client configuration it uses.
func (o *runOptions) manager(ctx context.Context) (manager.Manager, *rest.Config, error) {
	a := o.adapter
	for _, f := range []*string{&a.RemoteKubeConfigFile, &a.Authentication.RemoteKubeConfigFile, &a.Authorization.RemoteKubeConfigFile} {
		if *f == "" {
			*f = o.kubeconfig
		}
	}
	cfg, err := o.restConfig()
	if err != nil {
		return nil, nil, err
	}
	cfg.QPS, cfg.Burst = o.qps, o.burst
	if err := waitForAPIServer(ctx, cfg); err != nil {
		return nil, nil, err
	}
	scheme, err := workload.NewScheme()
	if err != nil {
		return nil, nil, err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		// Workloads are decoded into the workload package's types, not client-go's: the cache
		// holds every workload of the cluster, and these hold only what qscale reads.
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress: o.probeAddr,
		// Secrets are read by name, never through an informer: qscale holds only those that
		// triggers name, and needs no right to list or watch Secrets.
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		Cache:  cacheOptions(o.namespace),
	})
	return mgr, cfg, err
}

// addProbes adds the liveness and readiness checks: ready once the informer caches are synced.
func addProbes(ctx context.Context, mgr manager.Manager) error {
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("caches", func(*http.Request) error {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(wctx) {
			return errors.New("informer caches are not synced")
		}
		return nil
	})
}

// cacheOptions are the options of the manager's informer cache: every object is stored as
// scaler.Lean leaves it, and only namespace's objects when namespace is set.
func cacheOptions(namespace string) cache.Options {
	opts := cache.Options{DefaultTransform: scaler.Lean}
	if namespace != "" {
		opts.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	}
	return opts
}

// replicaIdentity names this process among qscale's replicas: in the leader election Lease
// and in its membership Lease.
func replicaIdentity() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		return "", err
	}
	return host + "_" + string(uuid.NewUUID()), nil
}

// leaseNamespace is the namespace of the leader election and membership Leases.
func (o *runOptions) leaseNamespace() (string, error) {
	if o.leaderElectionNamespace != "" {
		return o.leaderElectionNamespace, nil
	}
	b, err := os.ReadFile(inClusterNamespaceFile)
	if err != nil {
		return "", errors.New("--leader-elect needs --leader-election-namespace outside a cluster")
	}
	return strings.TrimSpace(string(b)), nil
}

// leaseClient is the namespace of the leader election and membership Leases, and a client for
// them.
func (o *runOptions) leaseClient(cfg *rest.Config) (string, *kubernetes.Clientset, error) {
	ns, err := o.leaseNamespace()
	if err != nil {
		return "", nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	return ns, kube, err
}

// sharing reports whether this replica shares the polling with others.
func (o *runOptions) sharing() bool { return o.leaderElect && o.peerAddress != "" }

// members adds to mgr this replica's membership among those that share the polling, with the
// address and serving certificate by which the others reach it. onChange is called when the
// members change.
func (o *runOptions) members(mgr manager.Manager, cfg *rest.Config, identity string, serving *genericapiserver.SecureServingInfo, onChange func()) (*shard.Members, error) {
	ns, kube, err := o.leaseClient(cfg)
	if err != nil {
		return nil, err
	}
	addr, err := peerAddress(o.peerAddress, o.adapter.SecureServing.BindPort)
	if err != nil {
		return nil, err
	}
	if serving == nil || serving.Cert == nil {
		return nil, errors.New("--peer-address needs the metrics API server to serve TLS")
	}
	m, err := shard.New(shard.Config{
		Client: kube, Namespace: ns, LeaseDuration: o.lease.LeaseDuration, OnChange: onChange,
		Self: shard.Member{Identity: identity, Address: addr},
		Fingerprint: func() string {
			certPEM, _ := serving.Cert.CurrentCertKeyContent()
			block, _ := pem.Decode(certPEM)
			if block == nil {
				return ""
			}
			return share.Fingerprint(block.Bytes)
		},
		Log: mgr.GetLogger().WithName("members"),
	})
	if err != nil {
		return nil, err
	}
	return m, mgr.Add(m)
}

// peerAddress is host:port from --peer-address, whose port defaults to the secure port. A
// bare IPv6 address (a pod IP) takes the port too.
func peerAddress(flag string, securePort int) (string, error) {
	host, port, err := net.SplitHostPort(flag)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(flag, "["), "]"), strconv.Itoa(securePort)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" || strings.ContainsAny(host, "/ []") {
		return "", fmt.Errorf("--peer-address %q: want a host or host:port", flag)
	}
	return net.JoinHostPort(host, port), nil
}

// elect adds the leader election to mgr when --leader-elect is set, and returns whether this
// replica may write; nil means it always may.
func (o *runOptions) elect(mgr manager.Manager, cfg *rest.Config, identity string) (func() bool, error) {
	if !o.leaderElect {
		return nil, nil
	}
	ns, kube, err := o.leaseClient(cfg)
	if err != nil {
		return nil, err
	}
	lc := o.lease
	lc.Client, lc.Namespace, lc.Name = kube, ns, leaseName
	lc.Identity = identity
	lc.Log = mgr.GetLogger().WithName("leader")
	e, err := leader.New(lc)
	if err != nil {
		return nil, err
	}
	return e.IsLeader, mgr.Add(e)
}

// leaseName is the leader election Lease, in the leader election namespace.
const leaseName = "qscale.io"

const inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// waitForAPIServer waits until the API server answers, so that a qscale started while it is
// away waits for it rather than failing and being restarted in a loop. It gives up only when
// ctx ends.
func waitForAPIServer(ctx context.Context, cfg *rest.Config) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	logger := ctrl.Log.WithName("startup")
	delay := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		_, err := dc.ServerVersion()
		if err == nil {
			return nil
		}
		if attempt == 1 || attempt%10 == 0 {
			logger.Info("waiting for the API server", "host", cfg.Host, "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the API server at %s did not answer: %w", cfg.Host, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
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
type storeValues struct{ store *store.Store }

func (v storeValues) Value(w metricsapi.Workload, metric string) (int64, time.Time, error) {
	return apiErrors(v.store.Value(store.Target{Namespace: w.Namespace, Kind: w.Kind, Name: w.Name}, metric))
}

func (v storeValues) RawValue(w metricsapi.Workload, metric string) (int64, time.Time, error) {
	return apiErrors(v.store.RawValue(store.Target{Namespace: w.Namespace, Kind: w.Kind, Name: w.Name}, metric))
}

// apiErrors turns the Store's errors into the metrics API's.
func apiErrors(milli int64, at time.Time, err error) (int64, time.Time, error) {
	switch {
	case errors.Is(err, store.ErrUnknownMetric):
		return 0, at, metricsapi.ErrUnknownMetric
	case errors.Is(err, store.ErrNoValue):
		return 0, at, fmt.Errorf("%w: %v", metricsapi.ErrNoValue, err) //nolint:errorlint // one error kind is kept: the metrics API's
	}
	return milli, at, err
}

func (v storeValues) MetricNames() []string { return v.store.MetricNames() }
