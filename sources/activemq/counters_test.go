package activemq_test

import (
	"net/http"
	"testing"

	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/internal/sourcetest"
)

// wantCounters checks a sample's value and counters; want nil is a threshold trigger's,
// which has none.
func wantCounters(t *testing.T, got sources.Sample, value float64, want *sources.Counters) {
	t.Helper()
	wantSample(t, got, "", value, value > 0)
	switch {
	case (got.Counters == nil) != (want == nil):
		t.Fatalf("counters %+v, want %+v", got.Counters, want)
	case want != nil && *got.Counters != *want:
		t.Fatalf("counters %+v, want %+v", *got.Counters, *want)
	}
}

// A backlog-age trigger reads EnqueueCount, DequeueCount and QueueSize together, over either
// protocol; over Jolokia alone by GET, or with other reads of the agent in one bulk request.
func TestCounters(t *testing.T) {
	t.Parallel()
	b := broker(t)
	orders, jobs := unique("orders"), unique("jobs")
	fill(t, b, orders, 5, 2)
	fill(t, b, jobs, 7, 7)
	secret := login(b)
	for _, p := range protocols(b) {
		t.Run(p.name, func(t *testing.T) {
			aged := func(q string) sources.Trigger { return parse(t, with(p.md(q), "targetBacklogAge", "30s"), secret) }
			wantCounters(t, poll(t, newPool(t), aged(orders))[0], 3, &sources.Counters{Produced: 5, Consumed: 2, Backlog: 3})

			got := poll(t, newPool(t), aged(orders), aged(jobs), parse(t, p.md(orders), secret))
			wantCounters(t, got[0], 3, &sources.Counters{Produced: 5, Consumed: 2, Backlog: 3})
			wantCounters(t, got[1], 0, &sources.Counters{Produced: 7, Consumed: 7})
			wantCounters(t, got[2], 3, nil)
		})
	}
	t.Run("counts follow the queue", func(t *testing.T) {
		pool := newPool(t)
		triggers := []sources.Trigger{
			parse(t, with(protocols(b)[0].md(orders), "targetBacklogAge", "30s"), secret),
			parse(t, with(protocols(b)[1].md(orders), "targetBacklogAge", "30s"), secret),
		}
		fill(t, b, orders, 4, 6)
		for _, got := range poll(t, pool, triggers...) {
			wantCounters(t, got, 1, &sources.Counters{Produced: 9, Consumed: 8, Backlog: 1})
		}
	})
}

// Counts that are missing, of the wrong type or negative are errors, in words of ours.
func TestHostileCounts(t *testing.T) {
	t.Parallel()
	const json = "application/json"
	ok := func(body string) http.HandlerFunc { return sourcetest.Answer(http.StatusOK, json, body) }
	counts := func(members string) string { return `{"status":200,"value":{` + members + `}}` }
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr string
	}{
		{name: "EnqueueCount as a string", handler: ok(counts(`"QueueSize":3,"EnqueueCount":"` + sourcetest.Marker + `","DequeueCount":1`)),
			wantErr: "EnqueueCount is not a number"},
		{name: "DequeueCount missing", handler: ok(counts(`"QueueSize":3,"EnqueueCount":4`)), wantErr: "DequeueCount is missing"},
		{name: "a negative DequeueCount", handler: ok(counts(`"QueueSize":3,"EnqueueCount":4,"DequeueCount":-1`)), wantErr: "DequeueCount is negative"},
		{name: "QueueSize null", handler: ok(counts(`"QueueSize":null,"EnqueueCount":4,"DequeueCount":1`)), wantErr: "QueueSize is null"},
		{name: "the size alone", handler: ok(`{"status":200,"value":3}`), wantErr: "value is not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := sourcetest.HTTPServer(t, tt.handler)
			tr := parse(t, md("managementEndpoint", addr, "brokerName", "b", "destinationName", "q", "targetBacklogAge", "30s"), nil)
			got := poll(t, newPool(t), tr)[0]
			wantSample(t, got, "", 0, false, "the Jolokia agent at http://"+addr, tt.wantErr)
			sourcetest.WantNoMarker(t, got.Err)
		})
	}
}

// In a bulk request each backlog-age read's reply is checked for its counts.
func TestHostileCountsInBulk(t *testing.T) {
	t.Parallel()
	reply := `[{"status":200,"value":{"QueueSize":3,"EnqueueCount":-4,"DequeueCount":1}},` +
		`{"status":200,"value":{"QueueSize":2,"EnqueueCount":9,"DequeueCount":7,"` + sourcetest.Marker + `":1}},{"status":200,"value":"b"}]`
	addr := sourcetest.HTTPServer(t, sourcetest.Answer(http.StatusOK, "application/json", reply))
	aged := func(q string) sources.Trigger {
		return parse(t, md("managementEndpoint", addr, "brokerName", "b", "destinationName", q, "targetBacklogAge", "30s"), nil)
	}
	got := poll(t, newPool(t), aged("q1"), aged("q2"))
	wantSample(t, got[0], "", 0, false, "reply 1: EnqueueCount is negative")
	sourcetest.WantNoMarker(t, got[0].Err)
	wantCounters(t, got[1], 2, &sources.Counters{Produced: 9, Consumed: 7, Backlog: 2})
}

// The statistics plugin's counts are checked as its size is.
func TestHostileStatisticsCounts(t *testing.T) {
	t.Parallel()
	stats := func(entries string) string {
		return "<map><entry><string>brokerName</string><string>b</string></entry>" +
			"<entry><string>destinationName</string><string>queue://q</string></entry>" +
			"<entry><string>size</string><long>3</long></entry>" + entries + "</map>"
	}
	entry := func(name, el string) string { return "<entry><string>" + name + "</string>" + el + "</entry>" }
	tests := []struct {
		name    string
		reply   string
		wantErr string
	}{
		{name: "enqueueCount missing", reply: stats(entry("dequeueCount", "<long>1</long>")), wantErr: "enqueueCount is missing"},
		{name: "dequeueCount -1", reply: stats(entry("enqueueCount", "<long>4</long>") + entry("dequeueCount", "<long>-1</long>")), wantErr: "dequeueCount is negative"},
		{name: "enqueueCount as a string with the marker", reply: stats(entry("enqueueCount", "<string>"+sourcetest.Marker+"</string>") + entry("dequeueCount", "<long>1</long>")),
			wantErr: "enqueueCount is not a <long> or an <int>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := fakeStatsBroker(t, stompScript{replies: []string{tt.reply}})
			aged := parse(t, md("protocol", "stomp", "stompEndpoint", addr, "destinationName", "q", "targetBacklogAge", "30s"), nil)
			plain := parse(t, md("protocol", "stomp", "stompEndpoint", addr, "destinationName", "q"), nil)
			got := poll(t, newPool(t), aged, plain)
			wantSample(t, got[0], "", 0, false, `the statistics query for queue "q" with a reply qscale cannot use: `+tt.wantErr)
			sourcetest.WantNoMarker(t, got[0].Err)
			wantCounters(t, got[1], 3, nil)
		})
	}
}
