package controlplane

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"

	"github.com/qscale/qscale/internal/loopback"
)

// Qscale is a `qscale run` process serving the control plane.
type Qscale struct {
	Cmd        *exec.Cmd
	Log        string // its output
	MetricsURL string // its Prometheus endpoint
	ReadyURL   string // its /readyz
	SecurePort int    // where it serves the metrics API

	exited chan struct{} // closed once the process has exited and been reaped
}

// QscaleOptions say how RunQscale runs qscale. Zero values take the defaults stated.
type QscaleOptions struct {
	// Kubeconfig is the identity qscale acts as; default: the admin kubeconfig.
	Kubeconfig string
	// SecurePort serves the metrics API; default: a free port.
	SecurePort int
	// Args come right after `run`, before the flags RunQscale sets (which win when repeated).
	Args []string
	// Log receives qscale's output; default: qscale.log in the control plane's folder.
	Log string
}

// StartQscale runs `bin run` against the control plane on free loopback ports, waits until it
// is ready, and registers its metrics API as v1beta1.external.metrics.k8s.io. Its output goes
// to qscale.log in the control plane's folder.
func (cp *ControlPlane) StartQscale(ctx context.Context, bin string, extraArgs ...string) (*Qscale, error) {
	q, err := cp.RunQscale(ctx, bin, QscaleOptions{Args: extraArgs})
	if err != nil {
		return nil, err
	}
	if err := cp.RegisterExternalMetrics(ctx, "qscale", q.SecurePort); err != nil {
		q.Stop()
		return nil, fmt.Errorf("registering the metrics API (see %s): %w", q.Log, err)
	}
	return q, nil
}

// RunQscale runs `bin run` against the control plane with its metrics and health endpoints on
// free loopback ports, and waits until it is ready. It registers nothing.
//
// Ports it picks are free when picked, not when qscale binds them: scenarios running at once
// pick theirs too. A qscale that exits because a port was taken is started again on others.
func (cp *ControlPlane) RunQscale(ctx context.Context, bin string, o QscaleOptions) (*Qscale, error) {
	for attempt := 1; ; attempt++ {
		q, err := cp.LaunchQscale(bin, o)
		if err != nil {
			return nil, err
		}
		err = q.WaitReady(ctx, 30*time.Second)
		if err == nil {
			return q, nil
		}
		q.Stop()
		if attempt == 3 || !strings.Contains(cp.TailFile(q.Log, 5), "address already in use") {
			return nil, err
		}
	}
}

// LaunchQscale runs `bin run` as RunQscale does, without waiting for it to be ready: for a
// qscale that starts while the API server is away, say.
func (cp *ControlPlane) LaunchQscale(bin string, o QscaleOptions) (*Qscale, error) {
	ports, err := loopback.FreePorts(3)
	for err == nil && o.SecurePort != 0 && slices.Contains(ports, o.SecurePort) {
		// The caller's port is free until qscale binds it: the system may hand it out again.
		ports, err = loopback.FreePorts(3)
	}
	if err != nil {
		return nil, err
	}
	if o.Kubeconfig == "" {
		o.Kubeconfig = cp.Kubeconfig
	}
	if o.SecurePort == 0 {
		o.SecurePort = ports[0]
	}
	if o.Log == "" {
		o.Log = filepath.Join(cp.Dir, "qscale.log")
	}
	q := &Qscale{Log: o.Log, SecurePort: o.SecurePort, exited: make(chan struct{}),
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1]), ReadyURL: fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2])}
	logFile, err := os.Create(q.Log)
	if err != nil {
		return nil, err
	}
	args := append(append([]string{"run"}, o.Args...), "--kubeconfig", o.Kubeconfig,
		"--secure-port", strconv.Itoa(o.SecurePort),
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[2]))
	q.Cmd = exec.Command(bin, args...) //nolint:gosec // the qscale binary under test
	q.Cmd.Stdout, q.Cmd.Stderr = logFile, logFile
	q.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := q.Cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() { // the one Wait: Running and Stop learn of the exit from q.exited
		_ = q.Cmd.Wait()
		_ = logFile.Close()
		close(q.exited)
	}()
	return q, nil
}

// WaitReady waits until qscale answers 200 on /readyz, and fails at once if it exits.
func (q *Qscale) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	go func() {
		select {
		case <-q.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := waitHTTP(ctx, q.ReadyURL, nil); err != nil {
		if !q.Running() {
			return fmt.Errorf("qscale exited (%s; see %s)", q.Cmd.ProcessState, q.Log)
		}
		return fmt.Errorf("qscale not ready (see %s): %w", q.Log, err)
	}
	return nil
}

// Running reports whether the process is still alive (not exited, not a zombie).
func (q *Qscale) Running() bool {
	select {
	case <-q.exited:
		return false
	default:
		return true
	}
}

// Exited is closed once the process has exited; Cmd.ProcessState then says how.
func (q *Qscale) Exited() <-chan struct{} { return q.exited }

// Signal sends sig to qscale alone (SIGKILL to end it abruptly, SIGTERM to stop it as
// Kubernetes does), without waiting.
func (q *Qscale) Signal(sig syscall.Signal) error {
	if !q.Running() {
		return fmt.Errorf("qscale has exited (%s)", q.Cmd.ProcessState)
	}
	return q.Cmd.Process.Signal(sig)
}

// Stop stops qscale: SIGTERM, then SIGKILL if it has not exited within 10s.
func (q *Qscale) Stop() { StopProcessGroup(q.Cmd.Process.Pid, q.exited, 10*time.Second) }

// HeapProfile writes q's heap profile to path: the metrics API server's /debug/pprof/heap,
// asked as the control plane's admin (authenticated and authorized through the API server as
// any request to that server is). The profile is taken after a garbage collection, so it
// shows what is live.
func (cp *ControlPlane) HeapProfile(ctx context.Context, q *Qscale, path string) error {
	cfg := rest.CopyConfig(cp.Config)
	cfg.Host = fmt.Sprintf("https://127.0.0.1:%d", q.SecurePort)
	// qscale serves with a certificate of its own, which no authority of the control plane signs.
	cfg.CAData, cfg.CAFile, cfg.Insecure = nil, "", true
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("heap profile of qscale on port %d: %w", q.SecurePort, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("heap profile of qscale on port %d: %s: %s", q.SecurePort, resp.Status, body)
	}
	f, err := os.Create(filepath.Clean(path))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
