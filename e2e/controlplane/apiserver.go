package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// auditPolicy logs who wrote what and when (Metadata: no bodies), and nothing about reads.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: None
`

// prepareAudit writes the audit policy when audit is on.
func (cp *ControlPlane) prepareAudit(on bool) error {
	if !on {
		return nil
	}
	cp.AuditLog = filepath.Join(cp.Dir, "audit.log")
	return os.WriteFile(filepath.Join(cp.Dir, "audit-policy.yaml"), []byte(auditPolicy), 0o600)
}

// auditFlags are kube-apiserver's audit flags: none without Options.Audit. The log backend
// writes each event before the request completes ("blocking"), so the log's order is the
// order in which the API server answered.
func (cp *ControlPlane) auditFlags() []string {
	if cp.AuditLog == "" {
		return nil
	}
	return []string{
		"--audit-policy-file=" + filepath.Join(cp.Dir, "audit-policy.yaml"),
		"--audit-log-path=" + cp.AuditLog, "--audit-log-format=json", "--audit-log-mode=blocking",
	}
}

// StopAPIServer stops kube-apiserver (SIGTERM, then SIGKILL after 10s) and leaves etcd and
// kube-controller-manager running: clients see connections refused until RestartAPIServer.
func (cp *ControlPlane) StopAPIServer() {
	if cmd := cp.procs[cp.apiserver]; cmd != nil {
		StopProcess(cmd, 10*time.Second)
		cp.procs[cp.apiserver] = nil
	}
}

// RestartAPIServer starts kube-apiserver again with the flags it had (the same port, etcd and
// certificates, so that every client's configuration still holds) and waits until it is
// ready. Another process may take the port in the meantime (tests pick free ports as they
// go): the start is retried while the log says so, until timeout.
func (cp *ControlPlane) RestartAPIServer(ctx context.Context, timeout time.Duration) error {
	if cp.procs[cp.apiserver] != nil {
		return errors.New("kube-apiserver is running")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		logged := cp.logSize("kube-apiserver")
		if err := cp.apiStart(); err != nil {
			return err
		}
		err := waitHTTP(ctx, cp.Config.Host+"/readyz", cp.Config)
		if err == nil {
			return nil
		}
		inUse := strings.Contains(cp.logSince("kube-apiserver", logged), "address already in use")
		cp.StopAPIServer()
		if !inUse || ctx.Err() != nil {
			return fmt.Errorf("kube-apiserver not ready after its restart (see %s): %w", cp.log("kube-apiserver"), err)
		}
	}
}

func (cp *ControlPlane) logSize(name string) int64 {
	fi, err := os.Stat(cp.log(name))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logSince returns what a component logged after offset.
func (cp *ControlPlane) logSince(name string, offset int64) string {
	b, err := os.ReadFile(cp.log(name))
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}

// ReadAudit reads the audit log of a control plane started with Options.Audit: one event
// per request that wrote (or tried to write) something, in the order they completed. A last
// line still being written is left out.
func (cp *ControlPlane) ReadAudit() ([]auditv1.Event, error) {
	if cp.AuditLog == "" {
		return nil, errors.New("the control plane was started without Options.Audit")
	}
	b, err := os.ReadFile(cp.AuditLog)
	if err != nil {
		return nil, err
	}
	var events []auditv1.Event
	s := bufio.NewScanner(bytes.NewReader(b[:bytes.LastIndexByte(b, '\n')+1]))
	s.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for s.Scan() {
		var e auditv1.Event
		if err := json.Unmarshal(s.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("%s: %w", cp.AuditLog, err)
		}
		events = append(events, e)
	}
	return events, s.Err()
}
