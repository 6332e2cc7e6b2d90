package activemq_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/qscale/qscale/internal/activemqtest"
	"github.com/qscale/qscale/sources"
)

// bulkTrigger is a trigger's metadata and what a poll must read for it: a value, or an error
// holding every one of wantErr.
type bulkTrigger struct {
	md      map[string]string
	value   float64
	wantErr []string
}

// pollTriggers polls triggers through one pool, polls times, and checks every sample.
func pollTriggers(t *testing.T, b *activemqtest.Broker, polls int, trs []bulkTrigger) {
	t.Helper()
	triggers := make([]sources.Trigger, len(trs))
	for i, tr := range trs {
		triggers[i] = parse(t, tr.md, login(b))
	}
	pool := newPool(t)
	for p := range polls {
		for i, s := range poll(t, pool, triggers...) {
			t.Run(fmt.Sprintf("poll %d trigger %d", p, i), func(t *testing.T) {
				wantSample(t, s, b.Password, trs[i].value, trs[i].value > 0, trs[i].wantErr...)
			})
		}
	}
}

// The distinct queues of one agent are read in one bulk request per poll, whatever else
// shares it; a queue alone, or a read a bulk request cannot make as the GET does, is a GET.
func TestBulkRead(t *testing.T) {
	t.Parallel()
	b := broker(t)
	queues := make([]string, 5)
	for i := range queues {
		queues[i] = unique(fmt.Sprintf("bulk%d", i))
		fill(t, b, queues[i], i+1, 0)
	}
	nosuch := unique("nosuch")
	// read is queue i through the agent at addr; it holds i+1 messages.
	read := func(addr string, i int, kv ...string) bulkTrigger {
		m := with(md("managementEndpoint", addr, "brokerName", b.Name, "destinationName", queues[i]), kv...)
		return bulkTrigger{md: m, value: float64(i + 1)}
	}
	literal := func(addr, queue, query string) string {
		return fmt.Sprintf("http://%s/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=%s,destinationType=Queue,destinationName=%s/QueueSize%s", addr, b.Name, queue, query)
	}
	tests := []struct {
		name                string
		polls               int
		triggers            func(addr string) []bulkTrigger
		wantGets, wantPosts int64 // over all polls
	}{
		{name: "five queues, one POST a poll", polls: 2, wantPosts: 2, triggers: func(a string) []bulkTrigger {
			return []bulkTrigger{read(a, 0), read(a, 1), read(a, 2), read(a, 3), read(a, 4),
				read(a, 2, "targetQueueSize", "1")} // the same queue: the same entry
		}},
		{name: "an unknown queue and an unknown broker among known queues", polls: 2, wantPosts: 2, triggers: func(a string) []bulkTrigger {
			return []bulkTrigger{read(a, 0),
				{md: md("managementEndpoint", a, "brokerName", b.Name, "destinationName", nosuch),
					wantErr: []string{fmt.Sprintf(`queue %q not found on broker "qscale-test" at http://%s`, nosuch, a), "check destinationName"}},
				read(a, 1),
				{md: md("managementEndpoint", a, "brokerName", "nosuch", "destinationName", queues[2]),
					wantErr: []string{`broker "nosuch" not found at http://` + a, "check brokerName"}},
				read(a, 3)}
		}},
		{name: "one queue is a GET", polls: 2, wantGets: 2, triggers: func(a string) []bulkTrigger {
			return []bulkTrigger{read(a, 0), read(a, 0, "activationTargetQueueSize", "0.5")}
		}},
		{name: "a restAPITemplate read joins the bulk request", polls: 1, wantPosts: 1, triggers: func(a string) []bulkTrigger {
			return []bulkTrigger{read(a, 0), {md: md("restAPITemplate", literal(a, queues[3], "")), value: 4}}
		}},
		{name: "a restAPITemplate read with query options stays a GET", polls: 1, wantPosts: 1, wantGets: 1, triggers: func(a string) []bulkTrigger {
			return []bulkTrigger{read(a, 0), read(a, 1), {md: md("restAPITemplate", literal(a, queues[3], "?ignoreErrors=true")), value: 4}}
		}},
		{name: "one bulk request per Origin header", polls: 1, wantPosts: 2, triggers: func(a string) []bulkTrigger {
			return []bulkTrigger{read(a, 0), read(a, 1, "corsHeader", "https://console.example"), read(a, 2),
				read(a, 3, "corsHeader", "https://console.example")}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			px := newHTTPProxy(t, b.JolokiaAddr, false)
			pollTriggers(t, b, tt.polls, tt.triggers(px.addr))
			px.wantRequests(t, tt.wantGets, tt.wantPosts)
		})
	}
}

// A poll of more reads than one bulk request holds splits them into near equal bulk
// requests, whose replies, hundreds of unknown queues included, stay within the bound on a
// reply's size.
func TestBulkReadInChunks(t *testing.T) {
	t.Parallel()
	b := broker(t)
	const unknown = 600
	known := []string{unique("chunk0"), unique("chunk1"), unique("chunk2")}
	for i, q := range known {
		fill(t, b, q, i+1, 0)
	}
	px := newHTTPProxy(t, b.JolokiaAddr, false)
	var trs []bulkTrigger
	for i, q := range known {
		trs = append(trs, bulkTrigger{md: md("managementEndpoint", px.addr, "brokerName", b.Name, "destinationName", q), value: float64(i + 1)})
	}
	for i := range unknown {
		q := fmt.Sprintf("%s-absent%03d", known[0], i)
		trs = append(trs, bulkTrigger{md: md("managementEndpoint", px.addr, "brokerName", b.Name, "destinationName", q),
			wantErr: []string{fmt.Sprintf("queue %q not found on broker", q)}})
	}
	pollTriggers(t, b, 1, trs)
	px.wantRequests(t, 0, 2)
}

// An agent that refuses POST, whether a proxy in front of it answers 405 or its own access
// policy allows GET only, costs the first poll one refused POST and no value: the poll reads
// every queue again by GET, and later polls make GETs only.
func TestBulkReadFallsBackToGET(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		broker     func(t testing.TB) *activemqtest.Broker
		refusePost bool
	}{
		{name: "a proxy answers POST with 405", broker: broker, refusePost: true},
		{name: "a Jolokia policy allows GET only", broker: getOnlyBroker},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := tt.broker(t)
			px := newHTTPProxy(t, b.JolokiaAddr, tt.refusePost)
			var trs []bulkTrigger
			for i := range 4 {
				q := unique(fmt.Sprintf("fallback%d", i))
				fill(t, b, q, i+1, 0)
				trs = append(trs, bulkTrigger{md: md("managementEndpoint", px.addr, "brokerName", b.Name, "destinationName", q), value: float64(i + 1)})
			}
			pollTriggers(t, b, 3, trs)
			px.wantRequests(t, 3*4, 1)
		})
	}
}

// getOnlyBroker starts a broker of its own whose Jolokia access policy allows GET only.
// Jolokia reads its policy from jolokia-access.xml on the class path, which holds the
// broker's conf folder.
func getOnlyBroker(t testing.TB) *activemqtest.Broker {
	t.Helper()
	dir := t.TempDir()
	policy := "<restrict><http><method>get</method></http></restrict>\n"
	if err := os.MkdirAll(filepath.Join(dir, "conf"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conf", "jolokia-access.xml"), []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), activemqtest.DefaultStartTimeout)
	defer cancel()
	b, err := activemqtest.Start(ctx, activemqtest.Options{Dir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("activemqtest: %v", err)
		}
	})
	return b
}
