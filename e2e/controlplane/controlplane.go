// Package controlplane starts a real Kubernetes control plane on loopback for end-to-end
// tests and the demo: etcd, kube-apiserver and kube-controller-manager (with the deployment,
// replicaset and horizontal-pod-autoscaler controllers) as child processes, built from Go
// modules by `make k8s-bin`. There is no kubelet: by default pods stay Pending and
// unscheduled, and the HPA scales spec.replicas from external metrics alone. With
// Options.PodStartDelay, kube-scheduler binds pods to a fake Node whose kubelet kwok plays:
// pods start, become Ready after that delay, and go away when deleted.
//
// ControlPlane is a running control plane, Options say how to start one, and Qscale is a
// `qscale run` process serving it.
package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/qscale/qscale/internal/loopback"
)

// EnvBinDir names the folder that holds etcd, kube-apiserver and kube-controller-manager.
const EnvBinDir = "QSCALE_K8S_BIN"

// Options configure a control plane. Zero values take the defaults stated.
type Options struct {
	// BinDir holds the binaries; default: $QSCALE_K8S_BIN.
	BinDir string
	// Dir holds certificates, data and logs; default: a new temporary folder.
	Dir string
	// HPASyncPeriod is the HPA controller's sync period; default 1s.
	HPASyncPeriod time.Duration
	// HPAWorkers is how many HPAs the HPA controller syncs at once; default 5, its own.
	HPAWorkers int
	// ControllerManagerQPS is kube-controller-manager's rate limit to the API server (with a
	// burst of twice as many); default 20, its own. Each HPA sync reads the scale and writes
	// the status: with hundreds of HPAs a round takes far longer than the sync period at 20.
	ControllerManagerQPS int
	// Timeout bounds the start-up; default 60s.
	Timeout time.Duration
	// Audit makes kube-apiserver log every write (create, update, patch, delete) at Metadata
	// level to ControlPlane.AuditLog, so that a test can tell who wrote what, and when.
	Audit bool
	// PodStartDelay, when set, gives pods a lifecycle: kube-scheduler binds each pod to the
	// fake Node NodeName, where kwok acknowledges it at once (Pending, ContainerCreating, with
	// a start time) and makes it Running and Ready PodStartDelay later, so that a workload's
	// status.readyReplicas trails its replicas as with real pods; a deleted pod is removed at
	// once, with no grace period. PodStartDelayAnnotation on a pod replaces the delay for that
	// pod. A change to a pod while it starts (a label, say) makes kwok count its delay again.
	// Default 0: no scheduler and no kwok, pods stay Pending and unscheduled.
	PodStartDelay time.Duration
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	// Kubeconfig is the path of an admin kubeconfig (system:masters).
	Kubeconfig string
	// Config is the admin client configuration.
	Config *rest.Config
	// Dir holds the certificates, data and logs (etcd.log, kube-apiserver.log, kwok.log, …).
	Dir string
	// AuditLog is kube-apiserver's audit log (see ReadAudit); empty without Options.Audit.
	AuditLog string

	procs     []*exec.Cmd // nil where a process is stopped on purpose (StopAPIServer)
	apiserver int         // index of kube-apiserver in procs
	apiStart  func() error
	kcm       int // index of kube-controller-manager in procs
	kcmStart  func() error
	kcmHealth string
	pki       pki
}

// Start starts etcd, kube-apiserver and kube-controller-manager (and kube-scheduler and
// kwok with Options.PodStartDelay) and waits until they are ready. On error everything
// started is stopped.
func Start(ctx context.Context, o Options) (cp *ControlPlane, err error) {
	if o.BinDir == "" {
		o.BinDir = os.Getenv(EnvBinDir)
	}
	if o.BinDir == "" {
		return nil, fmt.Errorf("no Kubernetes binaries: set %s (make k8s-bin builds them)", EnvBinDir)
	}
	if o.PodStartDelay < 0 {
		return nil, fmt.Errorf("PodStartDelay %s is negative", o.PodStartDelay)
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "qscale-e2e-"); err != nil {
			return nil, err
		}
	}
	o.HPASyncPeriod = cmp(o.HPASyncPeriod, time.Second)
	o.Timeout = cmp(o.Timeout, 60*time.Second)
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	cp = &ControlPlane{Dir: o.Dir, Kubeconfig: filepath.Join(o.Dir, "admin.kubeconfig")}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()
	return cp, cp.startAll(ctx, o)
}

// startAll generates the PKI and starts the components in order, each ready before the next.
func (cp *ControlPlane) startAll(ctx context.Context, o Options) error {
	p := pki{dir: o.Dir}
	if err := p.generate(); err != nil {
		return err
	}
	ports, err := loopback.FreePorts(4)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort, kcmPort := ports[0], ports[1], ports[2], ports[3]
	if err := cp.startEtcd(o.BinDir, etcdClient, etcdPeer); err != nil {
		return err
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	cp.pki = p
	if err := cp.prepareAudit(o.Audit); err != nil {
		return err
	}
	cp.apiserver = len(cp.procs)
	cp.apiStart = func() error { return cp.startAPIServer(o.BinDir, p, etcdClient, apiPort) }
	if err := cp.apiStart(); err != nil {
		return err
	}
	if err := p.kubeconfig(cp.Kubeconfig, server, "admin"); err != nil {
		return err
	}
	if cp.Config, err = clientcmd.BuildConfigFromFlags("", cp.Kubeconfig); err != nil {
		return err
	}
	cp.Config.QPS, cp.Config.Burst = 500, 1000 // tests create objects by the thousand
	if err := waitHTTP(ctx, server+"/readyz", cp.Config); err != nil {
		return fmt.Errorf("kube-apiserver not ready (see %s): %w", cp.log("kube-apiserver"), err)
	}
	kcmConfig := filepath.Join(o.Dir, "controller-manager.kubeconfig")
	if err := p.kubeconfig(kcmConfig, server, "controller-manager"); err != nil {
		return err
	}
	cp.kcm = len(cp.procs)
	cp.kcmStart = func() error { return cp.startControllerManager(p, kcmConfig, kcmPort, o) }
	cp.kcmHealth = fmt.Sprintf("https://127.0.0.1:%d/healthz", kcmPort)
	if err := cp.kcmStart(); err != nil {
		return err
	}
	if err := waitHTTP(ctx, cp.kcmHealth, nil); err != nil {
		return fmt.Errorf("kube-controller-manager not healthy (see %s): %w", cp.log("kube-controller-manager"), err)
	}
	if o.PodStartDelay > 0 {
		return cp.startPodLifecycle(ctx, o, p, server)
	}
	return nil
}

func cmp(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func (cp *ControlPlane) log(name string) string { return filepath.Join(cp.Dir, name+".log") }

func (cp *ControlPlane) startEtcd(bin string, client, peer int) error {
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	return cp.run(filepath.Join(bin, "etcd"), "etcd", []string{
		"--name=e2e", "--data-dir=" + filepath.Join(cp.Dir, "etcd"),
		"--listen-client-urls=" + clientURL, "--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=e2e=" + peerURL, "--log-level=warn", "--unsafe-no-fsync",
	}, []string{"PATH=/usr/bin:/bin"}) // etcd reads every ETCD_* variable as a flag
}

func (cp *ControlPlane) startAPIServer(bin string, p pki, etcdPort, port int) error {
	cmd, err := cp.start(filepath.Join(bin, "kube-apiserver"), "kube-apiserver", append([]string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdPort),
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
		// Any non-loopback address: without a default route the apiserver finds none. It is never dialled.
		"--advertise-address=10.255.255.1",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--tls-cert-file=" + p.path("apiserver.crt"), "--tls-private-key-file=" + p.path("apiserver.key"),
		"--client-ca-file=" + p.path("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + p.path("sa.pub"), "--service-account-signing-key-file=" + p.path("sa.key"),
		"--authorization-mode=RBAC",
		"--requestheader-client-ca-file=" + p.path("front-proxy-ca.crt"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + p.path("front-proxy-client.crt"), "--proxy-client-key-file=" + p.path("front-proxy-client.key"),
		// Endpoints refuse loopback addresses: aggregated APIs are reached through an
		// ExternalName Service resolved by the aggregator itself.
		"--enable-aggregator-routing=false",
	}, cp.auditFlags()...), os.Environ())
	if err != nil {
		return err
	}
	cp.place(cp.apiserver, cmd)
	return nil
}

func (cp *ControlPlane) startControllerManager(p pki, kubeconfig string, port int, o Options) error {
	cmd, err := cp.start(filepath.Join(o.BinDir, "kube-controller-manager"), "kube-controller-manager", []string{
		"--kubeconfig=" + kubeconfig, "--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
		"--use-service-account-credentials", "--root-ca-file=" + p.path("ca.crt"),
		"--service-account-private-key-file=" + p.path("sa.key"),
		"--leader-elect=false",
		"--controllers=deployment-controller,replicaset-controller,statefulset-controller,horizontal-pod-autoscaler-controller," +
			"serviceaccount-controller,serviceaccount-token-controller,garbage-collector-controller,namespace-controller,root-ca-certificate-publisher-controller",
		"--horizontal-pod-autoscaler-sync-period=" + o.HPASyncPeriod.String(),
		"--concurrent-horizontal-pod-autoscaler-syncs=" + strconv.Itoa(max(o.HPAWorkers, 5)),
		"--kube-api-qps=" + strconv.Itoa(max(o.ControllerManagerQPS, 20)), "--kube-api-burst=" + strconv.Itoa(2*max(o.ControllerManagerQPS, 15)),
	}, os.Environ())
	if err != nil {
		return err
	}
	cp.place(cp.kcm, cmd)
	return nil
}

// place puts a component started at index i of procs: appended on its first start, in the
// same place on a restart, so that Stop stops the components in order.
func (cp *ControlPlane) place(i int, cmd *exec.Cmd) {
	if i < len(cp.procs) {
		cp.procs[i] = cmd
	} else {
		cp.procs = append(cp.procs, cmd)
	}
}

// RestartControllerManager stops kube-controller-manager and starts it again with the same
// flags, and waits until it is healthy. After an API server outage its informers wait out
// a back-off of up to a minute before they list again; a scenario about qscale need not wait
// for that.
func (cp *ControlPlane) RestartControllerManager(ctx context.Context, timeout time.Duration) error {
	if cmd := cp.procs[cp.kcm]; cmd != nil {
		StopProcess(cmd, 10*time.Second)
		cp.procs[cp.kcm] = nil
	}
	if err := cp.kcmStart(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := waitHTTP(ctx, cp.kcmHealth, nil); err != nil {
		return fmt.Errorf("kube-controller-manager not healthy after its restart (see %s): %w", cp.log("kube-controller-manager"), err)
	}
	return nil
}

// run starts a binary as a child process and adds it to those Stop stops.
func (cp *ControlPlane) run(path, name string, args, env []string) error {
	cmd, err := cp.start(path, name, args, env)
	if err == nil {
		cp.procs = append(cp.procs, cmd)
	}
	return err
}

// start starts a binary as a child process, its output appended to <name>.log (a restarted
// component keeps its earlier output).
func (cp *ControlPlane) start(path, name string, args, env []string) (*exec.Cmd, error) {
	logFile, err := os.OpenFile(cp.log(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...) //nolint:gosec // the control plane's own binaries, from the configured folder
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	return cmd, nil
}

// Stop stops every process, the last started first, and waits for them.
func (cp *ControlPlane) Stop() {
	for i := len(cp.procs) - 1; i >= 0; i-- {
		if cp.procs[i] != nil {
			StopProcess(cp.procs[i], 10*time.Second)
		}
	}
	cp.procs = nil
}

// StopProcess sends SIGTERM to cmd's process group and SIGKILL if it has not exited in time.
func StopProcess(cmd *exec.Cmd, grace time.Duration) {
	if cmd.Process == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// StopProcessGroup stops a process that another goroutine waits for: it sends SIGTERM to the
// process group pgid, whose leader's exit closes exited, then SIGKILL if the leader has not
// exited within grace, and returns once it has.
func StopProcessGroup(pgid int, exited <-chan struct{}, grace time.Duration) {
	select {
	case <-exited:
		return
	default:
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
}

// waitHTTP polls url until it answers 200 or ctx ends. With cfg, it presents cfg's client
// certificate and trusts its CA; without, it skips verification (health endpoints).
func waitHTTP(ctx context.Context, url string, cfg *rest.Config) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a loopback health check
	if cfg != nil {
		var err error
		if client, err = rest.HTTPClientFor(cfg); err != nil {
			return err
		}
	}
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Tail returns the last lines of a component's log, for test failure messages.
func (cp *ControlPlane) Tail(name string, lines int) string { return cp.TailFile(cp.log(name), lines) }

// TailFile returns the last lines of a file, for test failure messages.
func (cp *ControlPlane) TailFile(path string, lines int) string {
	b, err := os.ReadFile(path) //nolint:gosec // a log file the harness itself writes
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
