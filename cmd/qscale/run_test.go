package main

import (
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

func TestPeerAddress(t *testing.T) {
	tests := []struct {
		name, flag, want string
		wantErr          bool
	}{
		{name: "an IPv4 address takes the secure port", flag: "10.0.0.7", want: "10.0.0.7:6443"},
		{name: "a host takes the secure port", flag: "qscale-0.qscale", want: "qscale-0.qscale:6443"},
		{name: "a port given is kept", flag: "10.0.0.7:9443", want: "10.0.0.7:9443"},
		{name: "a bare IPv6 address, as a pod IP is", flag: "fd00::7", want: "[fd00::7]:6443"},
		{name: "a bracketed IPv6 address", flag: "[fd00::7]", want: "[fd00::7]:6443"},
		{name: "an IPv6 address with a port", flag: "[fd00::7]:9443", want: "[fd00::7]:9443"},
		{name: "a URL", flag: "https://10.0.0.7", wantErr: true},
		{name: "a space", flag: "10.0.0.7 x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := peerAddress(tt.flag, 6443)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("peerAddress(%q) = %q, %v; want %q, error %t", tt.flag, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// qscale collects its garbage at GOGC=gcPercent unless GOGC says otherwise.
func TestGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	cases := []struct {
		name, env string
		want      int
	}{
		{name: "unset", want: gcPercent},
		{name: "GOGC set", env: "200", want: 100}, // left to the runtime, which read it at start
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("GOGC", c.env)
			debug.SetGCPercent(100)
			var logs strings.Builder
			setGCPercent(newLogOptions().logger(&logs))
			if got := debug.SetGCPercent(100); got != c.want {
				t.Errorf("GOGC %d, want %d (log: %s)", got, c.want, logs.String())
			}
			if !strings.Contains(logs.String(), "garbage collection target") {
				t.Errorf("the target is not logged: %s", logs.String())
			}
		})
	}
}

// A container's memory limit becomes 90% of it as the Go runtime's soft limit; GOMEMLIMIT,
// when set, wins.
func TestMemoryLimitFollowsTheContainer(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	const limit = 512 << 20
	cases := []struct {
		name, env string
		want      int64
	}{
		{name: "the container's limit", want: limit * 9 / 10},
		{name: "GOMEMLIMIT set", env: "300MiB", want: math.MaxInt64}, // left to the runtime, which read it at start
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", c.env)
			debug.SetMemoryLimit(math.MaxInt64)
			var logs strings.Builder
			setMemoryLimit(newLogOptions().logger(&logs), memlimit.WithProvider(memlimit.Limit(limit)))
			if got := debug.SetMemoryLimit(-1); got != c.want {
				t.Errorf("soft memory limit %d, want %d (log: %s)", got, c.want, logs.String())
			}
		})
	}
}
