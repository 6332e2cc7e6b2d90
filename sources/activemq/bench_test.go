package activemq_test

import (
	"context"
	"fmt"
	"net/http/httptrace"
	"sync/atomic"
	"testing"

	"github.com/qscale/qscale/internal/activemqtest"
	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/internal/sourcetest"
)

// BenchmarkPoll measures one steady-state poll of n triggers, each on its own queue (of one
// message) on one broker, polled together through one sources.Pool: over Jolokia (a GET for
// one queue, one bulk POST for many, on keep-alive connections) and over STOMP (every
// statistics query sent, then every reply read, on one connection). It reports the median and p99
// poll time, and the HTTP connections that the Jolokia polls opened.
func BenchmarkPoll(b *testing.B) {
	br := broker(b)
	for _, n := range []int{1, 100} {
		queues := make([]string, n)
		for i := range queues {
			queues[i] = unique(fmt.Sprintf("bench%03d", i))
			fill(b, br, queues[i], 1, 0)
		}
		for _, proto := range protocols(br) {
			b.Run(fmt.Sprintf("%s/queues=%d", proto.name, n), func(b *testing.B) {
				triggers := make([]sources.Trigger, n)
				for i, q := range queues {
					triggers[i] = parse(b, proto.md(q), login(br))
				}
				dials := measurePolls(b, br, triggers)
				if proto.name == "jolokia" {
					b.ReportMetric(float64(dials), "conns")
				}
			})
		}
	}
}

// measurePolls runs b.N polls after a warm-up that connects, reports the median and p99, and
// returns how many HTTP connections the polls opened (STOMP opens one by construction).
func measurePolls(b *testing.B, br *activemqtest.Broker, triggers []sources.Trigger) int64 {
	b.Helper()
	var dials atomic.Int64
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if !info.Reused {
				dials.Add(1)
			}
		},
	})
	pool := newPool(b)
	for _, s := range pool.Poll(ctx, triggers) {
		wantSample(b, s, br.Password, 1, true)
	}
	sourcetest.ReportPercentiles(b, sourcetest.TimePolls(ctx, b, pool, triggers))
	return dials.Load()
}
