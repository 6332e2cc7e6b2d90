package rabbitmq_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/qscale/qscale/sources/internal/sourcetest"
)

// What answers at a host URL is not necessarily RabbitMQ: a tenant may point a trigger at
// any page. Whatever it answers, the poll fails with an error that names the endpoint and
// the status, and says what is wrong in words of ours: never a value of 0, and never the
// answer's words.
func TestHostileManagementAPI(t *testing.T) {
	t.Parallel()
	const json = "application/json"
	page := func(items string) string { return `{"items":[` + items + `],"page":1,"page_count":1,"item_count":1}` }
	tests := []struct {
		name    string
		handler http.HandlerFunc
		raw     string // a raw answer instead of handler
		md      map[string]string
		wantErr []string // after "the management API at http://<addr>"
	}{
		{name: "401 with a body", handler: sourcetest.Answer(http.StatusUnauthorized, json, `{"error":"`+sourcetest.Marker+`"}`),
			wantErr: []string{`refused the login of user "guest": wrong username or password`, "(HTTP 401)"}},
		{name: "403 with a body", handler: sourcetest.Answer(http.StatusForbidden, "text/html", "<h1>"+sourcetest.Marker+"</h1>"),
			wantErr: []string{`refused user "guest" (HTTP 403)`}},
		{name: "404 with a body", handler: sourcetest.Answer(http.StatusNotFound, "text/plain", sourcetest.Marker),
			wantErr: []string{"(/api/overview answered 404): is the path prefix in host right?"}},
		{name: "400 with a body", handler: sourcetest.Answer(http.StatusBadRequest, json, `{"reason":"`+sourcetest.Marker+`"}`),
			wantErr: []string{"refused the query (HTTP 400)"}},
		{name: "500 with a body", handler: sourcetest.Answer(http.StatusInternalServerError, "text/plain", sourcetest.Marker),
			wantErr: []string{"answered HTTP 500 (Internal Server Error)"}},
		{name: "a status line of its own words", raw: "HTTP/1.1 503 " + sourcetest.Marker + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			wantErr: []string{"answered HTTP 503 (Service Unavailable)"}},
		{name: "no HTTP at all", raw: sourcetest.Marker + " ready\r\n\r\n",
			wantErr: []string{"the answer does not follow the protocol"}},
		{name: "200 with HTML", handler: sourcetest.Answer(http.StatusOK, "text/html", "<html>"+sourcetest.Marker+"</html>"),
			wantErr: []string{"answered page 1 of the queues of vhost \"v\" with HTTP 200 and a listing qscale cannot use: the answer is not JSON"}},
		{name: "200 without messages", handler: sourcetest.Answer(http.StatusOK, json, page(`{"name":"orders","state":"`+sourcetest.Marker+`"}`)),
			wantErr: []string{`lists queue "orders" in vhost "v" without a message count (state unknown)`}},
		{name: "200 with messages as a string", handler: sourcetest.Answer(http.StatusOK, json, page(`{"name":"orders","messages":"12","messages_ready":12}`)),
			wantErr: []string{"item 1: messages is not a number"}},
		{name: "200 with a negative count", handler: sourcetest.Answer(http.StatusOK, json, page(`{"name":"orders","messages":-5,"messages_ready":-5}`)),
			wantErr: []string{"item 1: messages is negative"}},
		{name: "200 with page_count -1", handler: sourcetest.Answer(http.StatusOK, json, `{"items":[{"name":"orders","messages":5,"messages_ready":5}],"page":1,"page_count":-1}`),
			wantErr: []string{"page_count is negative"}},
		{name: "200 with page_count 10^9", handler: sourcetest.Answer(http.StatusOK, json, `{"items":[{"name":"orders","messages":5,"messages_ready":5}],"page":1,"page_count":1000000000}`),
			wantErr: []string{"page_count is above 1000"}},
		{name: "200 with an oversized body", handler: sourcetest.Answer(http.StatusOK, json, `{"items":[],"page_count":0,"pad":"`+strings.Repeat(sourcetest.Marker, 300_000)+`"}`),
			wantErr: []string{`answered more than 2 MiB for one page of the queues of vhost "v"`}},
		{name: "200 listing the queue twice with other figures", handler: sourcetest.Answer(http.StatusOK, json,
			`{"items":[{"name":"orders","messages":5,"messages_ready":5},{"name":"orders","messages":0,"messages_ready":0}],"page":1,"page_count":1}`),
			wantErr: []string{"item 2: name repeats an earlier item's name with other figures"}},
		{name: "200 with a count as a string", md: md("queueName", "orders", "targetBacklogAge", "30s"),
			handler: sourcetest.Answer(http.StatusOK, json, page(`{"name":"orders","messages":5,"messages_ready":5,"message_stats":{"ack":"`+sourcetest.Marker+`","deliver_no_ack":0,"get_no_ack":0}}`)),
			wantErr: []string{"item 1: ack is not a number"}},
		{name: "200 with a count missing from its group", md: md("queueName", "orders", "targetBacklogAge", "30s"),
			handler: sourcetest.Answer(http.StatusOK, json, page(`{"name":"orders","messages":5,"messages_ready":5,"message_stats":{"publish":9,"ack":4}}`)),
			wantErr: []string{"item 1: deliver_no_ack is missing"}},
		{name: "200 with a negative count", md: md("queueName", "orders", "targetBacklogAge", "30s"),
			handler: sourcetest.Answer(http.StatusOK, json, page(`{"name":"orders","messages":5,"messages_ready":5,"message_stats":{"publish":-9}}`)),
			wantErr: []string{"item 1: publish is negative"}},
		{name: "200 with a rate but no publish count", md: md("queueName", "orders", "targetBacklogAge", "30s"),
			handler: sourcetest.Answer(http.StatusOK, json, page(`{"name":"orders","messages":5,"messages_ready":5,"message_stats":{"publish_details":{"rate":3}}}`)),
			wantErr: []string{"item 1: publish is missing"}},
		{name: "200 with the queue in the depth listing only", md: md("queueName", "orders", "targetBacklogAge", "30s"),
			handler: func(w http.ResponseWriter, r *http.Request) {
				items := ""
				if r.URL.Query().Get("disable_stats") == "true" {
					items = `{"name":"orders","messages":5,"messages_ready":5}`
				}
				sourcetest.Answer(http.StatusOK, json, `{"items":[`+items+`],"page":1,"page_count":1}`)(w, r)
			},
			wantErr: []string{`lists queue "orders" in vhost "v" with its depth but not with its statistics`}},
		{name: "200 with a queue a regex matches, unreadable, named by the endpoint", md: md("queueName", ".", "useRegex", "true"),
			handler: sourcetest.Answer(http.StatusOK, json, page(`{"name":"`+sourcetest.Marker+`","state":"down"}`)),
			wantErr: []string{`lists a queue that queueName "." matches in vhost "v" without a message count (state down)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := sourcetest.Endpoint(t, tt.raw, tt.handler)
			m := tt.md
			if m == nil {
				m = md("queueName", "orders")
			}
			tr := parse(t, m, map[string]string{"host": "http://guest:guest@" + addr + "/v"})
			got := poll(t, newPool(t), tr)[0]
			want := append([]string{"the management API at http://" + addr}, tt.wantErr...)
			if strings.HasPrefix(tt.name, "404") {
				want[0] = "no management API at http://" + addr
			}
			wantSample(t, got, 0, false, want...)
			sourcetest.WantNoMarker(t, got.Err)
		})
	}
}
