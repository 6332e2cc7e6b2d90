// Package sourcetest holds the checks and measurements that every source's tests share:
// Parse, NewPool and Poll to run triggers; CheckConfigError and CheckMissing for parameter
// validation; TimePolls with ReportPercentiles for the poll benchmarks; and SilentServer and
// ClosedPort for brokers that hang or are gone.
package sourcetest

import (
	"context"
	"errors"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qscale/qscale/sources"
)

// CheckConfigError checks the outcome of parsing trigger: no error when want is empty,
// otherwise a *sources.ConfigError naming the trigger, with exactly one problem per entry of
// want, each found in the message.
func CheckConfigError(t *testing.T, err error, trigger string, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var ce *sources.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *sources.ConfigError", err)
	}
	if len(ce.Problems) != len(want) {
		t.Fatalf("problems = %v, want %d", ce.Problems, len(want))
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if !strings.HasPrefix(err.Error(), `trigger "`+trigger+`": `) {
		t.Errorf("error does not name the trigger: %q", err)
	}
}

// CheckMissing checks that err, a *sources.ConfigError, flags as Missing exactly the problems
// of the parameters named in missing, and that it does not reveal secret.
func CheckMissing(t *testing.T, err error, secret string, missing []string) {
	t.Helper()
	if err == nil {
		return
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error reveals the secret: %q", err)
	}
	var ce *sources.ConfigError
	if !errors.As(err, &ce) {
		return
	}
	for _, p := range ce.Problems {
		if want := slices.Contains(missing, p.Param); p.Missing != want {
			t.Errorf("%s: Missing = %v, want %v", p.Param, p.Missing, want)
		}
	}
}

// Parse builds a trigger named "t" of type typ, failing the test on a configuration error.
func Parse(t testing.TB, registry sources.Registry, typ string, metadata, secret map[string]string) sources.Trigger {
	t.Helper()
	tr, err := registry.Parse(sources.Params{Type: typ, Name: "t", Metadata: metadata, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// NewPool returns a Pool over registry that is closed when the test ends.
func NewPool(t testing.TB, registry sources.Registry) *sources.Pool {
	p := sources.NewPool(registry)
	t.Cleanup(p.Close)
	return p
}

// Poll polls triggers through pool with a deadline of timeout.
func Poll(pool *sources.Pool, timeout time.Duration, triggers ...sources.Trigger) []sources.Sample {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return pool.Poll(ctx, triggers)
}

// TimePolls runs b.N polls of triggers, after the caller's warm-up, and returns how long each
// took; allocations are reported per poll.
func TimePolls(ctx context.Context, b *testing.B, pool *sources.Pool, triggers []sources.Trigger) []time.Duration {
	b.Helper()
	durations := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		pool.Poll(ctx, triggers)
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	return durations
}

// ReportPercentiles reports the median and the 99th percentile of durations, in milliseconds.
func ReportPercentiles(b *testing.B, durations []time.Duration) {
	if len(durations) == 0 {
		return
	}
	slices.Sort(durations)
	b.ReportMetric(ms(durations[len(durations)/2]), "p50-ms")
	b.ReportMetric(ms(durations[len(durations)*99/100]), "p99-ms")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// SilentServer returns the address of a loopback TCP server that accepts connections and
// never answers, like a broker that hangs; it closes them when t ends.
func SilentServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().String()
}

// ClosedPort returns a loopback host:port where nothing listens: port 1 (tcpmux), which no
// test or service here binds. A port freed from 127.0.0.1:0 would do only until another test
// listens on it.
func ClosedPort(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:1"
}

// WantSample checks a sample: with wantErr, an error containing each of them; otherwise
// value and active. No error may contain secret (a password, or credentials in a URL), when
// secret is not empty.
func WantSample(t testing.TB, got sources.Sample, secret string, value float64, active bool, wantErr ...string) {
	t.Helper()
	if got.Err != nil && secret != "" && strings.Contains(got.Err.Error(), secret) {
		t.Errorf("error reveals credentials: %v", got.Err)
	}
	if len(wantErr) > 0 {
		if got.Err == nil {
			t.Fatalf("value %v, want an error containing %q", got.Value, wantErr)
		}
		for _, w := range wantErr {
			if !strings.Contains(got.Err.Error(), w) {
				t.Errorf("error %q does not contain %q", got.Err, w)
			}
		}
		return
	}
	if got.Err != nil {
		t.Fatalf("unexpected error: %v", got.Err)
	}
	if got.Value != value || got.Active != active {
		t.Errorf("value, active = %v, %v; want %v, %v", got.Value, got.Active, value, active)
	}
}

// With returns a copy of metadata with the key, value pairs set; an empty value removes the
// key.
func With(metadata map[string]string, kv ...string) map[string]string {
	out := maps.Clone(metadata)
	if out == nil {
		out = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}
