package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestRunLogFlags(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantLevel  string
		wantFormat string
		wantErr    string
	}{
		{name: "defaults", wantLevel: "info", wantFormat: "json"},
		{name: "debug text", args: []string{"--log-level=debug", "--log-format=text"}, wantLevel: "debug", wantFormat: "text"},
		{name: "error json", args: []string{"--log-level", "error", "--log-format", "json"}, wantLevel: "error", wantFormat: "json"},
		{name: "unknown level", args: []string{"--log-level=warn"}, wantErr: `invalid argument "warn" for "--log-level" flag: must be one of debug, info, error`},
		{name: "level is case-sensitive", args: []string{"--log-level=INFO"}, wantErr: `"--log-level" flag: must be one of debug, info, error`},
		{name: "empty level", args: []string{"--log-level="}, wantErr: `"--log-level" flag: must be one of debug, info, error`},
		{name: "unknown format", args: []string{"--log-format=console"}, wantErr: `invalid argument "console" for "--log-format" flag: must be one of json, text`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, o := newRunFlags(io.Discard)
			err := fs.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				var stdout, stderr bytes.Buffer
				if code := run(append([]string{"run"}, tt.args...), nil, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.wantErr) {
					t.Fatalf("qscale run: code %d, stderr %q; want 2 and %q", code, stderr.String(), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := o.log.level.String(); got != tt.wantLevel {
				t.Errorf("level %q, want %q", got, tt.wantLevel)
			}
			if got := o.log.format.String(); got != tt.wantFormat {
				t.Errorf("format %q, want %q", got, tt.wantFormat)
			}
		})
	}
}

// qscale run --help lists qscale's own flags, then the metrics API server's under their heading.
func TestRunHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"run", "--help"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("code %d, want 0; stderr %q", code, stderr.String())
	}
	help := stderr.String()
	title := strings.Index(help, apiFlagsTitle)
	if title < 0 {
		t.Fatalf("no %q heading:\n%s", apiFlagsTitle, help)
	}
	listed := func(flag string) int { return strings.Index(help, "\n      "+flag+" ") } // a flag's own line
	for _, own := range []string{"--kubeconfig", "--namespace", "--leader-elect", "--metrics-bind-address", "--log-level", "--log-format", "--forward-external-metrics", "--forward-ca-file"} {
		if i := listed(own); i < 0 || i > title {
			t.Errorf("%s is not listed before the API server flags", own)
		}
	}
	for _, api := range []string{"--secure-port", "--cert-dir", "--tls-cert-file", "--audit-log-path", "--authentication-kubeconfig", "--authorization-kubeconfig", "--requestheader-client-ca-file"} {
		if i := listed(api); i < title {
			t.Errorf("%s is not listed under the API server heading", api)
		}
	}
}

func TestLogger(t *testing.T) {
	tests := []struct {
		name, level, format string
		wantLines           int
		wantJSON            bool
	}{
		{name: "json at info drops debug", level: "info", format: "json", wantLines: 2, wantJSON: true},
		{name: "json at debug", level: "debug", format: "json", wantLines: 3, wantJSON: true},
		{name: "json at error", level: "error", format: "json", wantLines: 1, wantJSON: true},
		{name: "text", level: "info", format: "text", wantLines: 2}, // plus the error's stack trace
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newLogOptions()
			if err := errors.Join(o.level.Set(tt.level), o.format.Set(tt.format)); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			logger := o.logger(&out)
			logger.V(1).Info("polled", "target", "shop/orders")
			logger.Info("scaled", "target", "shop/orders", "replicas", 3)
			logger.Error(errors.New("broker down"), "poll failed", "target", "shop/orders")
			lines := logLines(out.String())
			if len(lines) != tt.wantLines {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), tt.wantLines, out.String())
			}
			last := lines[len(lines)-1]
			var entry map[string]any
			err := json.Unmarshal([]byte(last), &entry)
			if !tt.wantJSON {
				if err == nil || !strings.Contains(last, "\terror\tpoll failed\t") {
					t.Fatalf("want a text line with the level and message, got %q", last)
				}
				return
			}
			if err != nil {
				t.Fatalf("not a JSON line: %q: %v", last, err)
			}
			if entry["level"] != "error" || entry["msg"] != "poll failed" || entry["target"] != "shop/orders" || entry["error"] != "broker down" {
				t.Fatalf("entry %v", entry)
			}
		})
	}
}

// logLines are the log lines of out, without the stack trace that follows an error in text.
func logLines(out string) []string {
	var lines []string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "{") || strings.Count(line, "\t") >= 2 && !strings.HasPrefix(line, "\t") {
			lines = append(lines, strings.TrimSuffix(line, "\n"))
		}
	}
	return lines
}

// The metrics API remembers an allowed caller for 5 minutes unless told otherwise, and a
// refused one for the library's 10 seconds.
func TestRunAuthorizationCache(t *testing.T) {
	tests := []struct {
		name                string
		args                []string
		wantAllow, wantDeny time.Duration
	}{
		{name: "defaults", wantAllow: 5 * time.Minute, wantDeny: 10 * time.Second},
		{name: "set", args: []string{"--authorization-webhook-cache-authorized-ttl=30s"}, wantAllow: 30 * time.Second, wantDeny: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, o := newRunFlags(io.Discard)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if a := o.adapter.Authorization; a.AllowCacheTTL != tt.wantAllow || a.DenyCacheTTL != tt.wantDeny {
				t.Errorf("authorized for %s, refused for %s; want %s and %s", a.AllowCacheTTL, a.DenyCacheTTL, tt.wantAllow, tt.wantDeny)
			}
		})
	}
}
