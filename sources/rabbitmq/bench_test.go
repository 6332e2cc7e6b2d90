package rabbitmq_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/internal/sourcetest"
)

// BenchmarkPoll measures one steady-state poll of n triggers, each on its own queue (of one
// message) in one vhost, polled together through one sources.Pool: over AMQP (a passive
// declare per queue on one connection) and over the management API (one listing of the
// vhost). It reports the median and p99 poll time and the connections the Source opened.
func BenchmarkPoll(b *testing.B) {
	for _, proto := range []string{"amqp", "http"} {
		for _, n := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/queues=%d", proto, n), func(b *testing.B) {
				v := newVhost(b)
				host := map[string]string{"host": amqpURL(v)}
				if proto == "http" {
					host["host"] = httpURL(v)
				}
				p := newPublisher(b, v)
				triggers := queuesWithTriggers(b, v, n, host, func(q string, _ int) { p.publish(b, q, 1) })
				pool := newPool(b)
				var dials atomic.Int64
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
					GotConn: func(info httptrace.GotConnInfo) {
						if !info.Reused {
							dials.Add(1)
						}
					},
				})
				measurePolls(ctx, b, pool, triggers)
				conns := dials.Load()
				if proto == "amqp" {
					wantOneConnection(b, v)
					conns = int64(len(vhostConnections(b, v)))
				}
				b.ReportMetric(float64(conns), "conns")
				b.ReportMetric(float64(pool.Len()), "sources")
			})
		}
	}
}

// BenchmarkBaseline measures what KEDA's scaler does per poll, on the same broker and in the
// same run, to compare with BenchmarkPoll: one passive declare on an open channel, and one
// GET of the per-queue management endpoint on a keep-alive client.
func BenchmarkBaseline(b *testing.B) {
	v := newVhost(b)
	createQueues(b, v, "q")
	p := newPublisher(b, v)
	p.publish(b, "q", 1)
	b.Run("amqp-passive-declare", func(b *testing.B) {
		ch, err := p.conn.Channel()
		if err != nil {
			b.Fatal(err)
		}
		measure(b, func() error {
			_, err := ch.QueueDeclarePassive("q", false, false, false, false, nil)
			return err
		})
	})
	b.Run("http-per-queue-get", func(b *testing.B) {
		u := apiBase + "/api/queues/" + esc(v) + "/q"
		measure(b, func() error {
			if code, body := apiCall(u, http.MethodGet, nil); code != http.StatusOK {
				return fmt.Errorf("%d %s", code, body)
			}
			return nil
		})
	})
}

// measure runs op b.N times and reports its median and p99.
func measure(b *testing.B, op func() error) {
	b.Helper()
	durations := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	sourcetest.ReportPercentiles(b, durations)
}

// measurePolls runs b.N polls after a warm-up that connects, and reports the median and p99.
func measurePolls(ctx context.Context, b *testing.B, pool *sources.Pool, triggers []sources.Trigger) {
	b.Helper()
	for _, s := range pool.Poll(ctx, triggers) {
		if s.Err != nil || s.Value != 1 {
			b.Fatalf("warm-up poll: value %v, error %v", s.Value, s.Err)
		}
	}
	sourcetest.ReportPercentiles(b, sourcetest.TimePolls(ctx, b, pool, triggers))
}
