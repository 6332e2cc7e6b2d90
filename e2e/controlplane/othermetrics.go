package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/qscale/qscale/internal/loopback"
)

// OtherMetrics is a second external metrics adapter (e2e/othermetrics) serving the control
// plane beside qscale, as KEDA's metrics server would: its own process, its own serving
// certificate, and delegated authentication and authorization against the control plane.
type OtherMetrics struct {
	Cmd    *exec.Cmd
	Log    string // its output, one line per metric read with the reader's name
	URL    string // https://127.0.0.1:port
	CAFile string // the authority its serving certificate chains to

	exited chan struct{}
}

// OtherMetricsOptions say how StartOtherMetrics runs the adapter.
type OtherMetricsOptions struct {
	// Kubeconfig is the identity it authenticates and authorizes callers with (TokenReviews,
	// SubjectAccessReviews, the extension-apiserver-authentication ConfigMap). Required.
	Kubeconfig string
	// Metric and Value are the one metric it serves and its value.
	Metric string
	Value  int64
}

// StartOtherMetrics runs bin (e2e/othermetrics, built) on a free loopback port with a
// self-signed certificate in a folder of its own, and waits until it serves.
func (cp *ControlPlane) StartOtherMetrics(ctx context.Context, bin string, o OtherMetricsOptions) (*OtherMetrics, error) {
	if o.Kubeconfig == "" {
		return nil, errors.New("othermetrics needs a kubeconfig to delegate authentication and authorization")
	}
	ports, err := loopback.FreePorts(1)
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(cp.Dir, "othermetrics-certs")
	m := &OtherMetrics{
		Log: cp.log("othermetrics"), URL: fmt.Sprintf("https://127.0.0.1:%d", ports[0]),
		// The generated file holds the certificate and the authority that signed it.
		CAFile: filepath.Join(certDir, "apiserver.crt"),
		exited: make(chan struct{}),
	}
	m.Cmd, err = cp.start(bin, "othermetrics", []string{
		"--secure-port=" + strconv.Itoa(ports[0]), "--bind-address=127.0.0.1", "--cert-dir=" + certDir,
		"--lister-kubeconfig=" + o.Kubeconfig, "--authentication-kubeconfig=" + o.Kubeconfig, "--authorization-kubeconfig=" + o.Kubeconfig,
		"--metric=" + o.Metric, "--value=" + strconv.FormatInt(o.Value, 10),
	}, os.Environ())
	if err != nil {
		return nil, err
	}
	go func() {
		_ = m.Cmd.Wait()
		close(m.exited)
	}()
	if err := m.waitServing(ctx, 30*time.Second); err != nil {
		m.Stop()
		return nil, fmt.Errorf("othermetrics (see %s): %w", m.Log, err)
	}
	return m, nil
}

// waitServing waits until the adapter answers over TLS with the certificate in CAFile: any
// HTTP status will do, since it refuses the anonymous.
func (m *OtherMetrics) waitServing(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		select {
		case <-m.exited:
			return fmt.Errorf("it exited (%s)", m.Cmd.ProcessState)
		default:
		}
		if last = m.answers(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (m *OtherMetrics) answers(ctx context.Context) error {
	pem, err := os.ReadFile(m.CAFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("no certificate in %s", m.CAFile)
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+"/apis/external.metrics.k8s.io/v1beta1", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// Stop stops the adapter: SIGTERM, then SIGKILL if it has not exited within 10s.
func (m *OtherMetrics) Stop() { StopProcessGroup(m.Cmd.Process.Pid, m.exited, 10*time.Second) }
