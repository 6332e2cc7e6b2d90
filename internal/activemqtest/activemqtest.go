// Package activemqtest runs a real ActiveMQ 5 broker for tests and demos: Debian's
// activemq package, started as a child process from a base folder of its own, with what
// qscale's activemq source reads enabled: Jolokia at /api/jolokia on a loopback port behind
// basic authentication, and STOMP with the statistics plugin. Debian's build ships neither
// the web console nor Jolokia; the broker serves Jolokia itself from Debian's Jetty 9 and
// jolokia-core jars, wired in by a Spring file (see files.go).
//
// Start (or New, in a test) lays out the base folder, starts the broker and waits until
// both ports answer and Jolokia sees the broker. A Broker can be stopped and started again on
// the same ports and folder, with its queues and messages kept, to test clients across a
// broker restart. Send and Consume change queue depth over STOMP.
//
// The packages come from .ci/activemq.sh (make brokers); without them Start fails and says so.
package activemqtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qscale/qscale/internal/loopback"
)

// Defaults of Options.
const (
	// A broker is ready in 2-3 s alone, but test binaries start JVMs side by side on two
	// cores, next to race-enabled tests and a control plane.
	DefaultStartTimeout = 120 * time.Second
	DefaultStopTimeout  = 15 * time.Second
)

// BrokerName is the brokerName of every broker the package starts.
const BrokerName = "qscale-test"

// User is the user name every client logs in with, over STOMP and Jolokia alike.
const User = "qscale"

// Options configure a broker. Zero values take the defaults stated.
type Options struct {
	// Dir is the broker's base folder (conf, lib, data); default: a new temporary folder,
	// removed by Close.
	Dir string
	// StartTimeout bounds each start, until the broker answers; default DefaultStartTimeout.
	StartTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL; default DefaultStopTimeout.
	StopTimeout time.Duration
	// Logf, when set, is told what the broker is doing (starting, ready, stopped).
	Logf func(format string, args ...any)
}

// Broker is a running (or stopped) broker. Its fields do not change across restarts.
type Broker struct {
	// Name is the broker's brokerName: BrokerName.
	Name string
	// User and Password log in over STOMP and Jolokia. The password is random per broker.
	User, Password string
	// JolokiaAddr is Jolokia's host:port, KEDA's managementEndpoint; it serves /api/jolokia/.
	JolokiaAddr string
	// StompAddr is the STOMP connector's host:port.
	StompAddr string
	// Dir is the base folder; the broker logs to Dir/data/activemq.log.
	Dir string

	opts    Options
	tempDir bool // Dir was made by Start: Close removes it

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// New starts a broker for t and stops it, removing its folder, when t ends. It fails t,
// rather than skipping it, when the broker cannot start: a skipped test reads as a pass.
func New(t testing.TB) *Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultStartTimeout)
	defer cancel()
	b, err := Start(ctx, Options{Logf: t.Logf})
	if err != nil {
		t.Fatalf("activemqtest: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("activemqtest: %v", err)
		}
	})
	return b
}

// Start lays out a broker in o.Dir on two free loopback ports and starts it (see
// Broker.Start). On error nothing is left running.
func Start(ctx context.Context, o Options) (*Broker, error) {
	if missing := missingPrerequisites(exec.LookPath); len(missing) > 0 {
		return nil, fmt.Errorf("cannot run ActiveMQ, missing %s: run .ci/activemq.sh (or make brokers)", strings.Join(missing, ", "))
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	b := &Broker{Name: BrokerName, User: User, Password: randomHex(12), opts: o, Dir: o.Dir}
	if b.Dir == "" {
		dir, err := os.MkdirTemp("", "qscale-activemq-")
		if err != nil {
			return nil, err
		}
		b.Dir, b.tempDir = dir, true
	}
	ports, err := loopback.FreePorts(2)
	if err != nil {
		return nil, errors.Join(err, b.removeDir())
	}
	b.StompAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	b.JolokiaAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
	l := layout{Dir: b.Dir, Name: b.Name, User: b.User, Password: b.Password, StompPort: ports[0], JolokiaPort: ports[1]}
	if err := writeLayout(l); err != nil {
		return nil, errors.Join(fmt.Errorf("laying out %s: %w", b.Dir, err), b.removeDir())
	}
	if err := b.Start(ctx); err != nil {
		return nil, errors.Join(err, b.removeDir())
	}
	return b, nil
}

// Start starts the broker again after Stop, on the same ports and folder, and waits until
// its STOMP and Jolokia ports answer and Jolokia reads the broker's MBean, or ctx or the
// start timeout ends. On error the broker is stopped, and the error quotes its log.
func (b *Broker) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return errors.New("the broker is already running")
	}
	logFile, err := os.OpenFile(filepath.Join(b.Dir, "data", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = logFile.Close() }() // the child holds its own descriptor
	conf := filepath.Join(b.Dir, "conf")
	// The packaged launcher script forces its own data folder and heap: run the jar directly.
	cmd := exec.Command("java", "-Xmx256m", //nolint:gosec // Debian's java and jar, with arguments the harness builds
		"-Dactivemq.home="+activemqHome,
		"-Dactivemq.base="+b.Dir,
		"-Dactivemq.conf="+conf,
		"-Dactivemq.data="+filepath.Join(b.Dir, "data"),
		"-Dlog4j.configuration=file:"+filepath.Join(conf, "log4j.properties"),
		"-jar", launcherJar, "start", "xbean:file:"+filepath.Join(conf, "activemq.xml"))
	cmd.Dir = b.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so that Stop reaches every thread; killed if the test dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting java: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	b.cmd, b.exited = cmd, exited
	b.logf("activemqtest: broker %s starting (pid %d, STOMP %s, Jolokia %s, folder %s)", b.Name, cmd.Process.Pid, b.StompAddr, b.JolokiaAddr, b.Dir)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, b.opts.StartTimeout)
	defer cancel()
	if err := b.waitReady(ctx, exited); err != nil {
		b.stopLocked()
		return fmt.Errorf("broker did not start: %w\n--- tail of %s:\n%s", err, b.logPath(), b.LogTail(40))
	}
	b.logf("activemqtest: broker %s ready in %s", b.Name, time.Since(start).Round(time.Millisecond))
	return nil
}

// waitReady polls until both ports accept connections and Jolokia reads the broker's
// MBean, which the broker registers once it has started.
func (b *Broker) waitReady(ctx context.Context, exited <-chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	url := "http://" + b.JolokiaAddr + "/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=" + b.Name + "/BrokerName"
	var last error
	for {
		if last = b.probe(ctx, client, url); last == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("java exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (b *Broker) probe(ctx context.Context, client *http.Client, url string) error {
	var d net.Dialer
	for _, addr := range []string{b.StompAddr, b.JolokiaAddr} {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		_ = c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(b.User, b.Password)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status":200`) {
		return fmt.Errorf("jolokia answered %s: %.200s", resp.Status, body)
	}
	return nil
}

// Stop stops the broker: SIGTERM, then SIGKILL when it has not exited within the stop
// timeout. Stopping a stopped broker does nothing.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopLocked()
}

func (b *Broker) stopLocked() {
	if b.cmd == nil {
		return
	}
	pid := b.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(b.opts.StopTimeout):
		b.logf("activemqtest: broker %s did not stop within %s: killing it", b.Name, b.opts.StopTimeout)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-b.exited
	}
	b.cmd, b.exited = nil, nil
	b.logf("activemqtest: broker %s stopped", b.Name)
}

// Close stops the broker and removes its folder if Start made it.
func (b *Broker) Close() error {
	b.Stop()
	return b.removeDir()
}

func (b *Broker) removeDir() error {
	if !b.tempDir {
		return nil
	}
	return os.RemoveAll(b.Dir)
}

// LogTail returns the last lines of the broker's log, for failure messages.
func (b *Broker) LogTail(lines int) string {
	var out []string
	for _, p := range []string{filepath.Join(b.Dir, "data", "stdout.log"), b.logPath()} {
		data, err := os.ReadFile(p) //nolint:gosec // a log the broker writes in its own folder
		if err != nil {
			continue
		}
		all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		out = append(out, all[max(0, len(all)-lines):]...)
	}
	return strings.Join(out, "\n")
}

func (b *Broker) logPath() string { return filepath.Join(b.Dir, "data", "activemq.log") }

func (b *Broker) logf(format string, args ...any) {
	if b.opts.Logf != nil {
		b.opts.Logf(format, args...)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
