package activemq_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/qscale/qscale/internal/activemqtest"
	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/internal/sourcetest"
)

// Many triggers on one endpoint share one Source, and one poll reads them all: over STOMP
// through one connection, over Jolokia in one bulk request on one keep-alive connection,
// reused from poll to poll.
func TestTriggersShareAConnection(t *testing.T) {
	t.Parallel()
	b := broker(t)
	// More queries than go-stomp buffers (20 frames to send, 16 replies received): a client
	// that sent them all before reading any reply would block.
	const n = 60
	queues := make([]string, n)
	for i := range queues {
		queues[i] = unique(fmt.Sprintf("q%02d", i))
		fill(t, b, queues[i], i%4+1, 0)
	}
	tests := []struct {
		name      string
		target    string
		md        func(proxy, queue string) map[string]string
		wantConns int64 // at most
	}{
		{name: "stomp", target: b.StompAddr, wantConns: 1, md: func(proxy, q string) map[string]string {
			return md("protocol", "stomp", "stompEndpoint", proxy, "destinationName", q)
		}},
		{name: "jolokia", target: b.JolokiaAddr, wantConns: 1, md: func(proxy, q string) map[string]string {
			return md("managementEndpoint", proxy, "brokerName", b.Name, "destinationName", q)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			px := sourcetest.NewProxy(t, tt.target, nil)
			triggers := make([]sources.Trigger, 0, n+1)
			for _, q := range queues {
				triggers = append(triggers, parse(t, tt.md(px.Addr, q), login(b)))
			}
			// A second trigger on the same queue is read by the same query.
			triggers = append(triggers, parse(t, with(tt.md(px.Addr, queues[3]), "targetQueueSize", "1"), login(b)))
			pool := newPool(t)
			for range 3 {
				got := poll(t, pool, triggers...)
				for i, s := range got[:n] {
					wantSample(t, s, b.Password, float64(i%4+1), true)
				}
				wantSample(t, got[n], b.Password, 4, true)
			}
			if pool.Len() != 1 {
				t.Errorf("pool holds %d sources, want 1", pool.Len())
			}
			if c := px.Accepted(); c < 1 || c > tt.wantConns {
				t.Errorf("connections opened = %d, want 1 to %d", c, tt.wantConns)
			}
		})
	}
}

// A poll while the broker is stopped fails with an error, never a value; once the broker
// is back on the same ports, the same Source reads it again over a new connection. The
// counts of backlog-age triggers, which ActiveMQ keeps in memory, start again from 0 (while
// the persistent messages stay queued): they go down, and that is no error.
func TestBrokerRestart(t *testing.T) {
	t.Parallel()
	b := activemqtest.New(t) // its own broker: the others' tests keep theirs
	fill(t, b, "orders", 3, 1)
	jolokia := md("managementEndpoint", b.JolokiaAddr, "brokerName", b.Name, "destinationName", "orders")
	stompPx := sourcetest.NewProxy(t, b.StompAddr, nil)
	stomp := md("protocol", "stomp", "stompEndpoint", stompPx.Addr, "destinationName", "orders")
	aged := func(m map[string]string) map[string]string { return with(m, "targetBacklogAge", "30s") }
	// jolokia, stomp, then the same as backlog-age triggers, sharing their sources.
	triggers := []sources.Trigger{parse(t, jolokia, login(b)), parse(t, stomp, login(b)), parse(t, aged(jolokia), login(b)), parse(t, aged(stomp), login(b))}
	pool := newPool(t)
	check := func(t *testing.T, wantErr [2][]string, counts *sources.Counters) {
		t.Helper()
		for i, s := range poll(t, pool, triggers...) {
			wantSample(t, s, b.Password, 2, true, wantErr[i%2]...)
			if i >= 2 && s.Err == nil && counts == nil {
				t.Fatalf("trigger %d: no counters expected", i)
			}
			if i >= 2 && s.Err == nil && *s.Counters != *counts {
				t.Errorf("trigger %d: counters %+v, want %+v", i, *s.Counters, *counts)
			}
		}
	}
	t.Run("before", func(t *testing.T) { check(t, [2][]string{}, &sources.Counters{Produced: 3, Consumed: 1, Backlog: 2}) })
	b.Stop()
	t.Run("stopped", func(t *testing.T) {
		check(t, [2][]string{{"cannot connect to the Jolokia agent at http://" + b.JolokiaAddr}, {"ActiveMQ at stomp://" + stompPx.Addr}}, nil)
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Run("restarted", func(t *testing.T) { check(t, [2][]string{}, &sources.Counters{Backlog: 2}) })
	t.Run("and after", func(t *testing.T) { check(t, [2][]string{}, &sources.Counters{Backlog: 2}) })
	t.Run("counting again", func(t *testing.T) {
		fill(t, b, "orders", 2, 2)
		check(t, [2][]string{}, &sources.Counters{Produced: 2, Consumed: 2, Backlog: 2})
	})
	if pool.Len() != 2 {
		t.Errorf("pool holds %d sources, want 2", pool.Len())
	}
	// One connection before the restart, one attempt while stopped, one after.
	if n := stompPx.Accepted(); n != 3 {
		t.Errorf("STOMP connections opened = %d, want 3", n)
	}
}
