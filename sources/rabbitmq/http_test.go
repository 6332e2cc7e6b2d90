package rabbitmq_test

import (
	"context"
	"fmt"
	"net/http/httptrace"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/internal/sourcetest"
	"github.com/qscale/qscale/sources/rabbitmq"
)

// regexFixture adds to depthFixture's vhost "jobs-a" (1), "jobs-b" (4) and "Jobs-C" (2).
func regexFixture(t *testing.T) string {
	t.Helper()
	v := depthFixture(t)
	createQueues(t, v, "jobs-a", "jobs-b", "Jobs-C")
	p := newPublisher(t, v)
	p.publish(t, "jobs-a", 1)
	p.publish(t, "jobs-b", 4)
	p.publish(t, "Jobs-C", 2)
	return v
}

func TestHTTPQueueLength(t *testing.T) {
	t.Parallel()
	v := regexFixture(t)
	host := map[string]string{"host": httpURL(v)}
	jobs := func(kv ...string) map[string]string {
		return md(append([]string{"queueName", "^jobs-", "useRegex", "true"}, kv...)...)
	}
	tests := []depthCase{
		{name: "ready and unacknowledged messages", md: md("queueName", "audit"), secret: host, wantValue: 5, wantActive: true, wantTarget: 20},
		{name: "excludeUnacknowledged", md: md("queueName", "audit", "excludeUnacknowledged", "true"), secret: host, wantValue: 3, wantActive: true},
		{name: "empty queue is inactive", md: md("queueName", "empty"), secret: host, wantValue: 0, wantActive: false},
		{name: "activationValue not exceeded", md: md("queueName", "orders", "activationValue", "5"), secret: host, wantValue: 5, wantActive: false},
		{name: "mode and value", md: md("queueName", "orders", "mode", "QueueLength", "value", "4"), secret: host, wantValue: 5, wantActive: true, wantTarget: 4},
		{name: "legacy queueLength", md: md("queueName", "orders", "queueLength", "3"), secret: host, wantValue: 5, wantActive: true, wantTarget: 3},
		{name: "regex sum, matched without regard to case", md: jobs(), secret: host, wantValue: 7, wantActive: true},
		{name: "regex max", md: jobs("operation", "max"), secret: host, wantValue: 4, wantActive: true},
		{name: "regex avg", md: jobs("operation", "avg"), secret: host, wantValue: 7.0 / 3, wantActive: true},
		{name: "regex over several pages", md: jobs("pageSize", "1"), secret: host, wantValue: 7, wantActive: true},
		{name: "regex excluding unacknowledged", md: md("queueName", "^(audit|jobs-a)$", "useRegex", "true", "excludeUnacknowledged", "true"), secret: host, wantValue: 4, wantActive: true},
		{name: "vhostName overrides the host's vhost", md: md("queueName", "orders", "vhostName", v), secret: map[string]string{"host": httpURL("/")}, wantValue: 5, wantActive: true},
		{name: "username and password override the host's",
			md: md("queueName", "orders", "host", "http://127.0.0.1:15672/"+esc(v), "protocol", "http", "timeout", "1500ms"), secret: map[string]string{"username": "guest", "password": "guest"}, wantValue: 5, wantActive: true},
		{name: "missing queue", md: md("queueName", "nosuch"), secret: host, wantErr: []string{`queue "nosuch" does not exist in vhost "` + v + `" on http://127.0.0.1:15672`}},
	}
	runDepthCases(t, tests)
	t.Run("regex matching nothing", func(t *testing.T) {
		got := poll(t, newPool(t), parse(t, md("queueName", "^nothing", "useRegex", "true"), host))[0]
		wantSample(t, got, 0, false)
		if len(got.Warnings) != 1 || got.Warnings[0].Reason != rabbitmq.ReasonNoMatchingQueues {
			t.Errorf("warnings = %v, want one %s", got.Warnings, rabbitmq.ReasonNoMatchingQueues)
		}
	})
}

// The management API's per-queue figures trail the real depth by seconds; the listing with
// queue totals does not, and neither does a passive declare.
func TestDepthIsExactRightAfterPublishing(t *testing.T) {
	t.Parallel()
	v := newVhost(t)
	p := newPublisher(t, v)
	for _, proto := range []struct{ name, host string }{{"amqp", amqpURL(v)}, {"http", httpURL(v)}} {
		t.Run(proto.name, func(t *testing.T) {
			q := "fresh-" + proto.name
			createQueues(t, v, q)
			tr := parse(t, md("queueName", q), map[string]string{"host": proto.host})
			pool := newPool(t)
			want := 0
			for _, n := range []int{0, 7, 3} {
				p.publish(t, q, n)
				want += n
				wantSample(t, poll(t, pool, tr)[0], float64(want), want > 0)
			}
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	v, silent := newVhost(t), sourcetest.SilentServer(t)
	createQueues(t, v, "orders")
	q := md("queueName", "orders")
	tests := []depthCase{
		{name: "wrong password", md: q, secret: map[string]string{"host": "http://guest:wrong-pw-7@127.0.0.1:15672/" + esc(v)},
			wantErr: []string{`management API at http://127.0.0.1:15672 refused the login of user "guest": wrong username or password`}},
		{name: "unknown vhost", md: q, secret: map[string]string{"host": httpURL("no-such-vhost")},
			wantErr: []string{`vhost "no-such-vhost" does not exist on http://127.0.0.1:15672`}},
		{name: "broker down", md: q, secret: map[string]string{"host": "http://guest:guest@127.0.0.1:1/" + esc(v)},
			wantErr: []string{"cannot connect to the management API at http://127.0.0.1:1", "connection refused"}},
		{name: "TLS to a plain port", md: q, secret: map[string]string{"host": "https://guest:guest@127.0.0.1:15672/" + esc(v)},
			wantErr: []string{"TLS handshake with the management API at https://127.0.0.1:15672", "does not speak TLS"}},
		{name: "wrong path prefix", md: q, secret: map[string]string{"host": "http://guest:guest@127.0.0.1:15672/rabbitmq/" + esc(v)},
			wantErr: []string{"no management API at http://127.0.0.1:15672/rabbitmq", "path prefix"}},
		{name: "broker that does not answer", md: md("queueName", "orders", "timeout", "300ms"), secret: map[string]string{"host": "http://guest:guest@" + silent + "/"},
			wantErr: []string{"the management API at http://" + silent + " did not answer in time"}},
	}
	runDepthCases(t, tests)
}

// MessageRate reads the publish rate the broker samples every 5 s: a steady publisher shows
// within about 10 s.
func TestHTTPMessageRate(t *testing.T) {
	t.Parallel()
	v := newVhost(t)
	createQueues(t, v, "rated")
	host := map[string]string{"host": httpURL(v)}
	rate := parse(t, md("queueName", "rated", "mode", "MessageRate", "value", "10"), host)
	depth := parse(t, md("queueName", "rated"), host)
	pool := newPool(t)

	// Before any publish the queue has no message_stats: a rate of 0, not an error.
	wantSample(t, poll(t, pool, rate)[0], 0, false)

	const perSecond = 50
	ctx, stop := context.WithTimeout(context.Background(), 25*time.Second)
	defer stop()
	published := publishSteadily(ctx, t, v, "rated", perSecond)
	var got []sources.Sample
	eventually(t, 20*time.Second, func() string {
		got = poll(t, pool, rate, depth)
		if got[0].Err != nil || got[1].Err != nil {
			return fmt.Sprintf("errors: %v, %v", got[0].Err, got[1].Err)
		}
		if got[0].Value < perSecond*0.6 || got[0].Value > perSecond*1.4 {
			return fmt.Sprintf("rate %.1f/s, want about %d/s (%d published so far)", got[0].Value, perSecond, published.Load())
		}
		return ""
	})
	if !got[0].Active || got[1].Value == 0 {
		t.Errorf("rate sample %+v, depth sample %+v; want active, with a backlog", got[0], got[1])
	}
	if rate.Config.Target() != 10 {
		t.Errorf("target = %v, want 10", rate.Config.Target())
	}
}

// publishSteadily publishes to queue at about perSecond messages a second until ctx ends.
func publishSteadily(ctx context.Context, t *testing.T, vhost, queue string, perSecond int) *atomic.Int64 {
	t.Helper()
	ch, err := newPublisher(t, vhost).conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	go func() {
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if ch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{Body: []byte("m")}) == nil {
					n.Add(1)
				}
			}
		}
	}()
	return &n
}

// 100 triggers on one vhost cost one listing per poll, and MessageRate and backlog-age
// triggers on another vhost two (depth, and rates with counts), over connections that are
// kept between polls.
func TestHTTPOneListingPerVhost(t *testing.T) {
	t.Parallel()
	v1, v2 := newVhost(t), newVhost(t)
	host1, host2 := map[string]string{"host": httpURL(v1)}, map[string]string{"host": httpURL(v2)}
	triggers := queuesWithTriggers(t, v1, 100, host1, nil)
	createQueues(t, v2, "r1", "r2")
	for _, q := range []string{"r1", "r2"} {
		triggers = append(triggers, parse(t, md("queueName", q, "mode", "MessageRate", "value", "5"), host2),
			parse(t, md("queueName", q, "targetBacklogAge", "1m"), host2))
	}
	pool := newPool(t)
	var requests, dials atomic.Int64
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			requests.Add(1)
			if !info.Reused {
				dials.Add(1)
			}
		},
	})
	for round := range 3 {
		requests.Store(0)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		for i, s := range pool.Poll(cctx, triggers) {
			if s.Err != nil {
				t.Fatalf("round %d, trigger %d: %v", round, i, s.Err)
			}
		}
		cancel()
		if n := requests.Load(); n != 3 {
			t.Errorf("round %d: %d requests, want 3 (one listing of %s, two of %s)", round, n, v1, v2)
		}
	}
	if n := dials.Load(); n > 2 {
		t.Errorf("%d connections opened, want at most 2 (one per vhost read concurrently)", n)
	}
	if pool.Len() != 1 {
		t.Errorf("pool holds %d sources, want 1: every vhost of a host shares the client", pool.Len())
	}
}
