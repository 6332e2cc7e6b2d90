package rabbitmq

import (
	"embed"
	"errors"
	"slices"
	"strings"
	"testing"
)

// answers are answers of the real management API (RabbitMQ 3.10).
//
//go:embed testdata/answers
var answers embed.FS

// answer returns one of answers.
func answer(t testing.TB, name string) string {
	t.Helper()
	b, err := answers.ReadFile("testdata/answers/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// depthPage wraps items in a page that is otherwise right: page 1 of 1.
func depthPage(items string) string {
	return `{"items":[` + items + `],"page":1,"page_count":1}`
}

func TestParsePage(t *testing.T) {
	depth := pageRequest{number: 1, size: 100}
	rates := pageRequest{number: 1, size: 100, rates: true}
	counts := pageRequest{number: 1, size: 100, rates: true, counts: true}
	q := func(name string, messages, ready float64) queueStats {
		return queueStats{Name: name, Messages: messages, Ready: ready}
	}
	c := func(name string, published, consumed float64) queueStats {
		return queueStats{Name: name, Published: published, Consumed: consumed, counted: true}
	}
	statsPage := func(stats string) string {
		return `{"items":[{"name":"q","message_stats":` + stats + `}],"page_count":1}`
	}
	tests := []struct {
		name          string
		body          string
		req           pageRequest
		want          []queueStats
		wantPageCount int
		wantErr       string
	}{
		// What the real broker answers.
		{name: "a depth page", body: answer(t, "depth-page.json"), req: depth, wantPageCount: 1,
			want: []queueStats{q("audit", 0, 0), q("empty", 0, 0), q("orders", 3, 3)}},
		{name: "the first of two pages", body: answer(t, "depth-first-of-two-pages.json"), req: pageRequest{number: 1, size: 2}, wantPageCount: 2,
			want: []queueStats{q("audit", 0, 0), q("empty", 0, 0)}},
		{name: "a filter matching nothing: page 1 of 0", body: answer(t, "depth-no-match.json"), req: pageRequest{number: 1, size: 2}},
		{name: "a regex listing", body: answer(t, "depth-regex.json"), req: depth, wantPageCount: 1, want: []queueStats{q("jobs-a", 56, 56), q("jobs-b", 0, 0)}},
		{name: "rates: a queue never published to has no message_stats", body: answer(t, "rates-page.json"), req: rates, wantPageCount: 1,
			want: []queueStats{{Name: "audit"}, {Name: "empty"}, {Name: "orders"}}},
		{name: "rates of a queue being published to", body: answer(t, "rates-publishing.json"), req: rates, wantPageCount: 1,
			want: []queueStats{{Name: "jobs-a", PublishRate: 5.2}, {Name: "jobs-b"}}},
		{name: "rates: a dead-letter queue's message_stats is an empty list", body: answer(t, "rates-dead-lettered.json"), req: rates, wantPageCount: 1,
			want: []queueStats{{Name: "audit"}, {Name: "drained"}, {Name: "empty"}, {Name: "orders"}, {Name: "parking"}, {Name: "retries"}}},
		// audit was published to only; drained consumed without ack; orders acknowledged 3
		// and fetched 1 without ack; retries got its messages by dead-lettering.
		{name: "counts", body: answer(t, "counts-page.json"), req: counts, wantPageCount: 1,
			want: []queueStats{c("audit", 3, 0), c("drained", 4, 4), c("empty", 0, 0), c("orders", 6, 4), c("parking", 2, 0), c("retries", 0, 1)}},

		// Absences that mean something.
		{name: "a queue without figures is unreadable, with its state", body: depthPage(`{"name":"q","state":"down"}`), req: depth, wantPageCount: 1,
			want: []queueStats{{Name: "q", unreadable: "down"}}},
		{name: "a queue with null figures is unreadable", body: depthPage(`{"name":"q","state":"minority","messages":null,"messages_ready":null}`), req: depth, wantPageCount: 1,
			want: []queueStats{{Name: "q", unreadable: "minority"}}},
		{name: "a state qscale does not know is not repeated", body: depthPage(`{"name":"q","state":"` + marker + `","messages_ready":1}`), req: depth, wantPageCount: 1,
			want: []queueStats{{Name: "q", unreadable: "unknown"}}},
		{name: "message_stats without publish_details", body: `{"items":[{"name":"q","message_stats":{}}],"page_count":1}`, req: rates, wantPageCount: 1,
			want: []queueStats{{Name: "q"}}},
		{name: "the same queue twice with the same figures", body: depthPage(`{"name":"q","messages":1,"messages_ready":1},{"name":"q","messages":1,"messages_ready":1}`), req: depth, wantPageCount: 1,
			want: []queueStats{q("q", 1, 1)}},
		{name: "keys qscale does not read are skipped, whatever they hold", body: depthPage(`{"name":"q","x":[{"y":[1,{}]}],"messages":2,"messages_ready":1,"x":"` + marker + `"}`), req: depth, wantPageCount: 1,
			want: []queueStats{q("q", 2, 1)}},
		{name: "-0 is 0", body: depthPage(`{"name":"q","messages":-0,"messages_ready":0}`), req: depth, wantPageCount: 1, want: []queueStats{q("q", 0, 0)}},

		{name: "counts: publish without publish_details (rates_mode none)", body: statsPage(`{"publish":5}`), req: counts, wantPageCount: 1,
			want: []queueStats{c("q", 5, 0)}},
		{name: "counts: message_stats null", body: statsPage(`null`), req: counts, wantPageCount: 1, want: []queueStats{c("q", 0, 0)}},
		{name: "counts: message_stats an empty list", body: statsPage(`[]`), req: counts, wantPageCount: 1, want: []queueStats{c("q", 0, 0)}},
		{name: "rates: counts are not read", body: statsPage(`{"publish":"` + marker + `","ack":-1,"publish_details":{"rate":1}}`), req: rates, wantPageCount: 1,
			want: []queueStats{{Name: "q", PublishRate: 1}}},

		// Figures that are not figures.
		{name: "counts: deliveries without deliver_no_ack", body: statsPage(`{"ack":1,"get_no_ack":0,"publish":3,"publish_details":{"rate":0}}`), req: counts,
			wantErr: "item 1: deliver_no_ack is missing"},
		{name: "counts: deliveries without ack", body: statsPage(`{"deliver_no_ack":1,"get_no_ack":0}`), req: counts, wantErr: "item 1: ack is missing"},
		{name: "counts: publish_details without publish", body: statsPage(`{"publish_details":{"rate":1.5}}`), req: counts, wantErr: "item 1: publish is missing"},
		{name: "counts: publish null", body: statsPage(`{"publish":null,"publish_details":{"rate":1.5}}`), req: counts, wantErr: "item 1: publish is missing"},
		{name: "counts: ack as a string", body: statsPage(`{"ack":"3","deliver_no_ack":0,"get_no_ack":0}`), req: counts, wantErr: "item 1: ack is not a number"},
		{name: "counts: a negative publish", body: statsPage(`{"publish":-3}`), req: counts, wantErr: "item 1: publish is negative"},
		{name: "counts: a fraction of a message", body: statsPage(`{"ack":0,"deliver_no_ack":0,"get_no_ack":0.5}`), req: counts, wantErr: "item 1: get_no_ack is not a whole number"},
		{name: "counts: beyond 64 bits", body: statsPage(`{"publish":1e19}`), req: counts, wantErr: "item 1: publish is too large"},
		{name: "counts: ack twice", body: statsPage(`{"ack":0,"deliver_no_ack":0,"get_no_ack":0,"ack":9}`), req: counts, wantErr: "item 1: ack appears twice"},
		{name: "counts: message_stats a list of something", body: statsPage(`[{"publish":1}]`), req: counts, wantErr: "item 1: message_stats is not a JSON object"},
		{name: "counts: message_stats a number", body: statsPage(`7`), req: counts, wantErr: "item 1: message_stats is not a JSON object"},
		{name: "messages as a string", body: depthPage(`{"name":"q","messages":"12","messages_ready":1}`), req: depth, wantErr: "item 1: messages is not a number"},
		{name: "negative messages", body: depthPage(`{"name":"q","messages":1,"messages_ready":1},{"name":"r","messages":-5,"messages_ready":0}`), req: depth, wantErr: "item 2: messages is negative"},
		{name: "messages_ready as an object", body: depthPage(`{"name":"q","messages":1,"messages_ready":{"n":1}}`), req: depth, wantErr: "item 1: messages_ready is not a number"},
		{name: "a fraction of a message", body: depthPage(`{"name":"q","messages":1.5,"messages_ready":1}`), req: depth, wantErr: "item 1: messages is not a whole number"},
		{name: "a count beyond 64 bits", body: depthPage(`{"name":"q","messages":1e19,"messages_ready":1}`), req: depth, wantErr: "item 1: messages is too large"},
		{name: "a count beyond any float", body: depthPage(`{"name":"q","messages":1e400,"messages_ready":1}`), req: depth, wantErr: "item 1: messages is too large"},
		{name: "a negative rate", body: `{"items":[{"name":"q","message_stats":{"publish_details":{"rate":-2.5}}}],"page_count":1}`, req: rates, wantErr: "item 1: rate is negative"},
		{name: "a rate as a string", body: `{"items":[{"name":"q","message_stats":{"publish_details":{"rate":"` + marker + `"}}}],"page_count":1}`, req: rates, wantErr: "item 1: rate is not a number"},
		{name: "publish_details without rate", body: `{"items":[{"name":"q","message_stats":{"publish_details":{}}}],"page_count":1}`, req: rates, wantErr: "item 1: rate is missing"},
		{name: "message_stats that is no object", body: `{"items":[{"name":"q","message_stats":[1]}],"page_count":1}`, req: rates, wantErr: "item 1: message_stats is not a JSON object"},

		// Names.
		{name: "an item without a name", body: depthPage(`{"messages":1,"messages_ready":1}`), req: depth, wantErr: "item 1: name is missing"},
		{name: "an empty name", body: depthPage(`{"name":"","messages":1,"messages_ready":1}`), req: depth, wantErr: "item 1: name is empty"},
		{name: "a name that is no string", body: depthPage(`{"name":7,"messages":1,"messages_ready":1}`), req: depth, wantErr: "item 1: name is not a string"},
		{name: "an item that is no object", body: depthPage(`"` + marker + `"`), req: depth, wantErr: "item 1: items is not a JSON object"},
		{name: "the same queue twice with other figures", body: depthPage(`{"name":"q","messages":5,"messages_ready":5},{"name":"q","messages":0,"messages_ready":0}`), req: depth, wantErr: "item 2: name repeats an earlier item's name with other figures"},
		{name: "a key twice", body: depthPage(`{"name":"q","messages":5,"messages_ready":5,"messages":0}`), req: depth, wantErr: "item 1: messages appears twice"},

		// The page.
		{name: "page_count -1", body: `{"items":[],"page_count":-1}`, req: depth, wantErr: "page_count is negative"},
		{name: "page_count 10^9", body: `{"items":[],"page_count":1000000000}`, req: depth, wantErr: "page_count is above 1000, the most pages qscale reads of a listing"},
		{name: "page_count missing", body: `{"items":[]}`, req: depth, wantErr: "page_count is missing"},
		{name: "page_count null", body: `{"items":[],"page_count":null}`, req: depth, wantErr: "page_count is missing"},
		{name: "items missing", body: `{"page_count":1}`, req: depth, wantErr: "items is missing"},
		{name: "items that is no array", body: `{"items":{"q":1},"page_count":1}`, req: depth, wantErr: "items is not a JSON array"},
		{name: "items listed beyond page_count", body: `{"items":[{"name":"q","messages":1,"messages_ready":1}],"page_count":0}`, req: depth, wantErr: "page_count does not count the page of the items listed"},
		{name: "more items than the page size", body: answer(t, "depth-page.json"), req: pageRequest{number: 1, size: 2}, wantErr: "items holds more items than the page size asked for"},
		{name: "item_count that disagrees", body: `{"items":[],"page_count":0,"item_count":3}`, req: depth, wantErr: "item_count does not match the number of items"},
		{name: "another page than asked for", body: answer(t, "depth-first-of-two-pages.json"), req: pageRequest{number: 2, size: 2}, wantErr: "page is not the page asked for"},
		{name: "an array", body: `[]`, req: depth, wantErr: "the answer is not a JSON object"},
		{name: "null", body: `null`, req: depth, wantErr: "the answer is not a JSON object"},
		{name: "HTML", body: `<html><body>` + marker + `</body></html>`, req: depth, wantErr: "the answer is not JSON"},
		{name: "nothing", body: ``, req: depth, wantErr: "the answer is not JSON"},
		{name: "cut short", body: answer(t, "depth-page.json")[:60], req: depth, wantErr: "the answer is not JSON"},
		{name: "data after the page", body: depthPage(``) + ` {"` + marker + `":1}`, req: depth, wantErr: "the answer is not JSON"},
		{name: "a stray closing brace after the page", body: depthPage(``) + `}`, req: depth, wantErr: "the answer is not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePage([]byte(tt.body), tt.req)
			if tt.wantErr != "" {
				var le *listingError
				if !errors.As(err, &le) || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want a listingError %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !slices.Equal(got.queues, tt.want) || got.pageCount != tt.wantPageCount {
				t.Errorf("parsePage = %+v, page_count %d; want %+v, %d", got.queues, got.pageCount, tt.want, tt.wantPageCount)
			}
		})
	}
}

// Every text a listingError can print comes from the tables, never from an answer.
func TestListingErrorTexts(t *testing.T) {
	for f := range fieldNames {
		for why := range faultTexts {
			e := &listingError{item: 3, field: field(f), fault: fault(why)}
			if fieldNames[f] == "" || faultTexts[why] == "" || !strings.HasPrefix(e.Error(), "item 3: ") {
				t.Errorf("field %d, fault %d: %q", f, why, e.Error())
			}
		}
	}
}
