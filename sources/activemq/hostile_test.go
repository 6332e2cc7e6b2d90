package activemq_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/qscale/qscale/sources/internal/sourcetest"
)

// What answers at a managementEndpoint or restAPITemplate is not necessarily Jolokia: a
// tenant may point a trigger at any page. Whatever it answers, the poll fails with an error
// that names the agent and the status, in words of ours: never a value of 0, and never the
// answer's words.
func TestHostileJolokia(t *testing.T) {
	t.Parallel()
	const json = "application/json"
	ok := func(body string) http.HandlerFunc { return sourcetest.Answer(http.StatusOK, json, body) }
	tests := []struct {
		name    string
		handler http.HandlerFunc
		raw     string // a raw answer instead of handler
		wantErr []string
	}{
		{name: "401 with a body", handler: sourcetest.Answer(http.StatusUnauthorized, "text/html", "<h1>"+sourcetest.Marker+"</h1>"),
			wantErr: []string{`refused the login of user "admin": wrong username or password`}},
		{name: "403 with a body", handler: sourcetest.Answer(http.StatusForbidden, "text/plain", sourcetest.Marker),
			wantErr: []string{`refused user "admin"`}},
		{name: "404 with a body", handler: sourcetest.Answer(http.StatusNotFound, "text/plain", sourcetest.Marker),
			wantErr: []string{"(HTTP 404): is managementEndpoint the web console's host:port"}},
		{name: "500 with a body", handler: sourcetest.Answer(http.StatusInternalServerError, "text/plain", sourcetest.Marker),
			wantErr: []string{"answered HTTP 500 (Internal Server Error)"}},
		{name: "a status line of its own words", raw: "HTTP/1.1 502 " + sourcetest.Marker + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			wantErr: []string{"answered HTTP 502 (Bad Gateway)"}},
		{name: "no HTTP at all", raw: sourcetest.Marker + "\r\n\r\n", wantErr: []string{"the answer does not follow the protocol"}},
		{name: "200 with HTML", handler: sourcetest.Answer(http.StatusOK, "text/html", "<html>"+sourcetest.Marker+"</html>"),
			wantErr: []string{"the reply is not JSON"}},
		{name: "200 with an oversized body", handler: ok(`{"status":200,"value":1,"pad":"` + strings.Repeat(sourcetest.Marker, 100_000) + `"}`),
			wantErr: []string{"answered more than 1 MiB to one request"}},
		{name: "status 200 without value", handler: ok(`{"status":200,"` + sourcetest.Marker + `":1}`),
			wantErr: []string{"value is missing"}},
		{name: "status 200 with a string value", handler: ok(`{"status":200,"value":"` + sourcetest.Marker + `"}`),
			wantErr: []string{"value is not a number: does the URL read an attribute such as QueueSize?"}},
		{name: "status 200 with a negative value", handler: ok(`{"status":200,"value":-5}`),
			wantErr: []string{"value is negative"}},
		{name: "status 200 with an object value", handler: ok(`{"status":200,"value":{"` + sourcetest.Marker + `":{"QueueSize":1}}}`),
			wantErr: []string{"value is not a number"}},
		{name: "an error reply", handler: ok(`{"status":500,"error_type":"` + sourcetest.Marker + `","error":"java.lang.Exception : ` + sourcetest.Marker + `"}`),
			wantErr: []string{"could not read http://", "(Jolokia status 500)"}},
		{name: "an error reply refusing the read", handler: ok(`{"status":403,"error":"` + sourcetest.Marker + `"}`),
			wantErr: []string{"its access policy forbids it (Jolokia status 403)"}},
		{name: "a status that is no HTTP status", handler: ok(`{"status":"` + sourcetest.Marker + `","value":3}`),
			wantErr: []string{"status is not an HTTP status code"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := sourcetest.Endpoint(t, tt.raw, tt.handler)
			tr := parse(t, md("managementEndpoint", addr, "brokerName", "b", "destinationName", "q"), map[string]string{"username": "admin", "password": "pw"})
			got := poll(t, newPool(t), tr)[0]
			want := append([]string{"http://" + addr}, tt.wantErr...)
			wantSample(t, got, "", 0, false, want...)
			sourcetest.WantNoMarker(t, got.Err)
		})
	}
}

// Two queues of one agent are read in one bulk request: its reply is checked as a whole and
// reply by reply.
func TestHostileJolokiaBulk(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		reply    string // to a bulk request of two reads and a probe
		wantErrs [2][]string
	}{
		{name: "fewer replies than requests", reply: `[{"status":200,"value":3}]`,
			wantErrs: [2][]string{{"the bulk reply holds 1 replies to 3 requests"}, {"the bulk reply holds 1 replies to 3 requests"}}},
		{name: "a negative value and an error holding the marker",
			reply:    `[{"status":200,"value":-1},{"status":500,"error":"` + sourcetest.Marker + `"},{"status":200,"value":"b"}]`,
			wantErrs: [2][]string{{"reply 1: value is negative"}, {"(Jolokia status 500)"}}},
		{name: "a reply holding the value twice", reply: `[{"status":200,"value":4,"value":0},{"status":200,"value":1},{"status":200,"value":"b"}]`,
			wantErrs: [2][]string{{"reply 1: value appears twice"}, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := sourcetest.HTTPServer(t, sourcetest.Answer(http.StatusOK, "application/json", tt.reply))
			pool := newPool(t)
			a := parse(t, md("managementEndpoint", addr, "brokerName", "b", "destinationName", "q1"), nil)
			b := parse(t, md("managementEndpoint", addr, "brokerName", "b", "destinationName", "q2"), nil)
			for i, got := range poll(t, pool, a, b) {
				wantSample(t, got, "", 1, true, tt.wantErrs[i]...)
				sourcetest.WantNoMarker(t, got.Err)
			}
		})
	}
}

// The statistics plugin's replies are checked as Jolokia's are: whatever answers at a
// stompEndpoint, the poll fails with an error in words of ours.
func TestHostileStatistics(t *testing.T) {
	t.Parallel()
	stats := func(size string) string {
		return "<map><entry><string>brokerName</string><string>b</string></entry>" +
			"<entry><string>destinationName</string><string>queue://q</string></entry>" + size + "</map>"
	}
	size := func(el string) string { return "<entry><string>size</string>" + el + "</entry>" }
	tests := []struct {
		name    string
		script  stompScript
		wantErr []string
	}{
		{name: "size -5", script: stompScript{replies: []string{stats(size("<long>-5</long>"))}},
			wantErr: []string{`the statistics query for queue "q" with a reply qscale cannot use: size is negative`}},
		{name: "size missing", script: stompScript{replies: []string{stats("")}}, wantErr: []string{"size is missing"}},
		{name: "size abc with the marker", script: stompScript{replies: []string{stats(size("<long>abc" + sourcetest.Marker + "</long>"))}},
			wantErr: []string{"size is not a whole number"}},
		{name: "a reply that is no map", script: stompScript{replies: []string{"<" + sourcetest.Marker + ">"}},
			wantErr: []string{"the statistics reply is not a jms-map-xml map"}},
		{name: "two replies that disagree", script: stompScript{replies: []string{stats(size("<long>5</long>")), stats(size("<long>0</long>"))}},
			wantErr: []string{`answered the statistics query for queue "q" twice, with different figures`}},
		{name: "an ERROR frame for the login", script: stompScript{connect: "ERROR\nmessage:" + sourcetest.Marker + "\n\n" + sourcetest.Marker + "\x00"},
			wantErr: []string{"refused the connection (an ERROR frame)"}},
		{name: "a frame other than CONNECTED", script: stompScript{connect: sourcetest.Marker + "\n\n\x00"},
			wantErr: []string{"the answer does not follow the protocol"}},
		{name: "an ERROR frame instead of a reply", script: stompScript{raw: "ERROR\nmessage:" + sourcetest.Marker + "\n\n\x00"},
			wantErr: []string{"lost (ended with an ERROR frame)"}},
		{name: "a frame of 2 GB announced", script: stompScript{raw: "MESSAGE\ncontent-length:2000000000\n\n"},
			wantErr: []string{"lost (the broker sent a STOMP frame larger than 64 KiB, the most qscale reads)"}},
		{name: "a frame without end", script: stompScript{raw: "MESSAGE\nsubscription:0\n\n" + strings.Repeat(sourcetest.Marker, 10_000)},
			wantErr: []string{"larger than 64 KiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := fakeStatsBroker(t, tt.script)
			tr := parse(t, md("protocol", "stomp", "stompEndpoint", addr, "destinationName", "q"), nil)
			got := poll(t, newPool(t), tr)[0]
			wantSample(t, got, "", 0, false, append([]string{"stomp://" + addr}, tt.wantErr...)...)
			sourcetest.WantNoMarker(t, got.Err)
		})
	}
}

// stompScript is what fakeStatsBroker answers.
type stompScript struct {
	connect string   // raw bytes answering CONNECT; "" for a CONNECTED frame
	replies []string // the bodies answering each statistics query, before the end of its list
	raw     string   // raw bytes answering a query instead of replies
}

// fakeStatsBroker is a STOMP server on a loopback port that plays ActiveMQ's statistics
// plugin with the replies of s. It stops when t ends, and returns its host:port.
func fakeStatsBroker(t *testing.T, s stompScript) string {
	t.Helper()
	return sourcetest.Serve(t, func(c net.Conn) { serveStats(c, s) })
}

func serveStats(c net.Conn, s stompScript) {
	r, w := frame.NewReader(c), frame.NewWriter(c)
	var sub, replyTo string
	for {
		f, err := r.Read()
		switch {
		case err != nil:
			return
		case f == nil: // a heart-beat
			continue
		}
		switch f.Command {
		case frame.CONNECT, frame.STOMP:
			if s.connect != "" {
				_, _ = io.WriteString(c, s.connect)
				return
			}
			_ = w.Write(frame.New(frame.CONNECTED, frame.Version, "1.2"))
		case frame.SUBSCRIBE:
			sub, replyTo = f.Header.Get(frame.Id), f.Header.Get(frame.Destination)
		case frame.SEND:
			if s.raw != "" {
				_, _ = io.WriteString(c, s.raw)
				continue
			}
			for i, body := range append(s.replies, "<map/>") {
				m := frame.New(frame.MESSAGE, frame.Subscription, sub, frame.Destination, replyTo,
					frame.MessageId, fmt.Sprint(i), "correlation-id", f.Header.Get("correlation-id"))
				m.Body = []byte(body)
				_ = w.Write(m)
			}
		case frame.DISCONNECT:
			if id, ok := f.Header.Contains(frame.Receipt); ok {
				_ = w.Write(frame.New(frame.RECEIPT, frame.ReceiptId, id))
			}
			return
		}
	}
}
