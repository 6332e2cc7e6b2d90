package rabbitmq_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/qscale/qscale/sources"
)

// countsWithin is how long the management API may take to show counts: it samples them
// every 5 s, and a new queue's first sample comes up to 10 s after it is declared; a busy
// machine (the whole suite in parallel on 2 cores) can delay both.
const countsWithin = 60 * time.Second

// counterCase is a trigger and the sample it must come to.
type counterCase struct {
	name      string
	md        map[string]string
	wantValue float64
	want      *sources.Counters // nil: a threshold trigger, which has none
}

// pollUntil polls the cases' triggers together until every sample is what its case wants,
// and fails the test on the first error: counts that lag are waited for, errors are not.
func pollUntil(t *testing.T, host map[string]string, cases []counterCase) {
	t.Helper()
	triggers := make([]sources.Trigger, len(cases))
	for i, c := range cases {
		triggers[i] = parse(t, c.md, host)
	}
	pool := newPool(t)
	eventually(t, countsWithin, func() string {
		for i, got := range poll(t, pool, triggers...) {
			c := cases[i]
			if got.Err != nil {
				t.Fatalf("%s: %v", c.name, got.Err)
			}
			if got.Value != c.wantValue || (got.Counters == nil) != (c.want == nil) || (c.want != nil && *got.Counters != *c.want) {
				return fmt.Sprintf("%s: value %v, counters %+v; want %v, %+v", c.name, got.Value, got.Counters, c.wantValue, c.want)
			}
		}
		return ""
	})
}

// Produced counts publishes; Consumed counts messages acknowledged after a delivery or a
// get, and those delivered or got without acknowledgement; Backlog counts every message
// still in the queue, unacknowledged ones included.
func TestHTTPCounters(t *testing.T) {
	t.Parallel()
	v := newVhost(t)
	createQueues(t, v, "orders", "jobs-a", "jobs-b", "idle")
	p := newPublisher(t, v)
	p.publish(t, "orders", 10)
	p.consume(t, "orders", 3, true)
	p.get(t, "orders", 2, true)
	p.get(t, "orders", 1, false)
	p.holdUnacked(t, "orders", 2) // 4 left: 2 ready, 2 unacknowledged
	p.publish(t, "jobs-a", 5)
	p.consume(t, "jobs-a", 5, false)
	p.publish(t, "jobs-b", 2)

	aged := func(kv ...string) map[string]string { return md(append([]string{"targetBacklogAge", "30s"}, kv...)...) }
	pollUntil(t, map[string]string{"host": httpURL(v)}, []counterCase{
		{name: "manual and automatic acknowledgement", md: aged("queueName", "orders"), wantValue: 4,
			want: &sources.Counters{Produced: 10, Consumed: 6, Backlog: 4}},
		{name: "excludeUnacknowledged changes the value only", md: aged("queueName", "orders", "excludeUnacknowledged", "true"), wantValue: 2,
			want: &sources.Counters{Produced: 10, Consumed: 6, Backlog: 4}},
		{name: "a regex sums its queues whatever the operation", md: aged("queueName", "^jobs-", "useRegex", "true", "operation", "max"), wantValue: 2,
			want: &sources.Counters{Produced: 7, Consumed: 5, Backlog: 2}},
		{name: "a queue never used counts 0", md: aged("queueName", "idle"), want: &sources.Counters{}},
		{name: "a threshold trigger has no counters", md: md("queueName", "orders"), wantValue: 4},
		{name: "nor has a MessageRate trigger", md: md("queueName", "orders", "mode", "MessageRate", "value", "5")},
	})
}

// A queue deleted and declared again starts its counts again: they go down, and no poll
// fails for it.
func TestHTTPCountersOfARedeclaredQueue(t *testing.T) {
	t.Parallel()
	v := newVhost(t)
	createQueues(t, v, "orders")
	p := newPublisher(t, v)
	p.publish(t, "orders", 5)
	p.consume(t, "orders", 2, true)
	host := map[string]string{"host": httpURL(v)}
	orders := []counterCase{{name: "before", md: md("queueName", "orders", "targetBacklogAge", "30s"), wantValue: 3,
		want: &sources.Counters{Produced: 5, Consumed: 2, Backlog: 3}}}
	pollUntil(t, host, orders)

	deleteQueue(t, v, "orders")
	createQueues(t, v, "orders")
	p.publish(t, "orders", 1)
	orders[0].name, orders[0].wantValue, orders[0].want = "after", 1, &sources.Counters{Produced: 1, Backlog: 1}
	pollUntil(t, host, orders)
}
