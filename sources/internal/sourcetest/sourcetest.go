// Package sourcetest holds the checks and measurements that every source's tests share:
// CheckConfigError for parameter validation, and TimePolls with ReportPercentiles for the
// poll benchmarks.
package sourcetest

import (
	"context"
	"errors"
	"slices"
	"strings"
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
