package rabbitmq_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/internal/sourcetest"
)

// depthCase is one trigger read once through a fresh pool.
type depthCase struct {
	name       string
	md, secret map[string]string
	wantValue  float64
	wantActive bool
	wantTarget float64
	wantErr    []string
	// wantHidden are texts the broker sends that the error must not repeat.
	wantHidden []string
}

func runDepthCases(t *testing.T, tests []depthCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := parse(t, tt.md, tt.secret)
			got := poll(t, newPool(t), tr)[0]
			wantSample(t, got, tt.wantValue, tt.wantActive, tt.wantErr...)
			if got.Err != nil && strings.Contains(got.Err.Error(), secretPassword(tt.secret)) {
				t.Errorf("error reveals the password: %v", got.Err)
			}
			for _, h := range tt.wantHidden {
				if got.Err != nil && strings.Contains(got.Err.Error(), h) {
					t.Errorf("error repeats the broker's text %q: %v", h, got.Err)
				}
			}
			if tt.wantTarget != 0 && tr.Config.Target() != tt.wantTarget {
				t.Errorf("target = %v, want %v", tr.Config.Target(), tt.wantTarget)
			}
		})
	}
}

// secretPassword returns the password a Secret holds, in its host URL or on its own, unless
// it is also the user name (guest/guest): messages name the user.
func secretPassword(secret map[string]string) string {
	user, pw := secret["username"], secret["password"]
	if u, err := url.Parse(secret["host"]); err == nil && pw == "" && u.User != nil {
		user = u.User.Username()
		pw, _ = u.User.Password()
	}
	if pw == "" || pw == user {
		return "\x00no password\x00"
	}
	return pw
}

// depthFixture lays out a vhost with "orders" (5 ready), "audit" (5 messages, 2 of them
// delivered and unacknowledged) and "empty".
func depthFixture(t *testing.T) string {
	t.Helper()
	v := newVhost(t)
	createQueues(t, v, "orders", "audit", "empty")
	p := newPublisher(t, v)
	p.publish(t, "orders", 5)
	p.publish(t, "audit", 5)
	p.holdUnacked(t, "audit", 2)
	return v
}

func TestAMQPDepth(t *testing.T) {
	t.Parallel()
	v := depthFixture(t)
	host := map[string]string{"host": amqpURL(v)}
	tests := []depthCase{
		{name: "ready messages right after publishing", md: md("queueName", "orders"), secret: host, wantValue: 5, wantActive: true, wantTarget: 20},
		{name: "unacknowledged messages do not count", md: md("queueName", "audit"), secret: host, wantValue: 3, wantActive: true},
		{name: "excludeUnacknowledged is what AMQP does anyway", md: md("queueName", "audit", "excludeUnacknowledged", "true"), secret: host, wantValue: 3, wantActive: true},
		{name: "empty queue is inactive", md: md("queueName", "empty"), secret: host, wantValue: 0, wantActive: false},
		{name: "activationValue not exceeded", md: md("queueName", "orders", "activationValue", "5"), secret: host, wantValue: 5, wantActive: false},
		{name: "activationValue exceeded", md: md("queueName", "orders", "activationValue", "4.5"), secret: host, wantValue: 5, wantActive: true},
		{name: "mode and value", md: md("queueName", "orders", "mode", "QueueLength", "value", "2.5"), secret: host, wantValue: 5, wantActive: true, wantTarget: 2.5},
		{name: "legacy queueLength", md: md("queueName", "orders", "queueLength", "3"), secret: host, wantValue: 5, wantActive: true, wantTarget: 3},
		{name: "explicit protocol and timeout", md: md("queueName", "orders", "protocol", "amqp", "timeout", "2000"), secret: host, wantValue: 5, wantActive: true},
		{name: "vhostName overrides the host's vhost", md: md("queueName", "orders", "vhostName", v), secret: map[string]string{"host": amqpURL("/")}, wantValue: 5, wantActive: true},
		{name: "username and password override the host's",
			md: md("queueName", "orders", "host", "amqp://nobody@"+amqpAddr+"/"+esc(v)), secret: map[string]string{"username": "guest", "password": "guest"}, wantValue: 5, wantActive: true},
		{name: "missing queue", md: md("queueName", "nosuch"), secret: host, wantErr: []string{`queue "nosuch" does not exist in vhost "` + v + `" on amqp://127.0.0.1:5672`}},
	}
	runDepthCases(t, tests)
}

func TestAMQPErrors(t *testing.T) {
	t.Parallel()
	v, silent := newVhost(t), sourcetest.SilentServer(t)
	createQueues(t, v, "orders")
	tests := []depthCase{
		{name: "wrong password", md: md("queueName", "orders"), secret: map[string]string{"host": "amqp://guest:wrong-pw-7@" + amqpAddr + "/" + esc(v)},
			wantErr: []string{`amqp://127.0.0.1:5672 (vhost "` + v + `") refused the login of user "guest": wrong username or password`}},
		{name: "unknown vhost", md: md("queueName", "orders"), secret: map[string]string{"host": amqpURL("no-such-vhost")},
			wantErr:    []string{`amqp://127.0.0.1:5672 (vhost "no-such-vhost") refused the vhost`, "AMQP reply 530 NOT_ALLOWED"},
			wantHidden: []string{"vhost no-such-vhost not found"}}, // the broker's reason
		{name: "broker down", md: md("queueName", "orders"), secret: map[string]string{"host": "amqp://guest:guest@127.0.0.1:1/" + esc(v)},
			wantErr: []string{"cannot connect to amqp://127.0.0.1:1", "is RabbitMQ running", "connection refused"}},
		{name: "TLS to a plain port", md: md("queueName", "orders"), secret: map[string]string{"host": "amqps://guest:guest@" + amqpAddr + "/" + esc(v)},
			wantErr: []string{"TLS handshake with amqps://127.0.0.1:5672", "does not speak TLS"}},
		{name: "broker that does not answer", md: md("queueName", "orders", "timeout", "300"), secret: map[string]string{"host": "amqp://guest:guest@" + silent + "/"},
			wantErr: []string{"amqp://" + silent + ` (vhost "/") did not answer in time`, "a shorter timeout hides a wrong password"}},
	}
	runDepthCases(t, tests)
}

// A missing queue closes the channel it was declared on; the same poll's other queues and
// the next polls must not suffer from it, and no connection is opened for it.
func TestAMQPDeletedQueue(t *testing.T) {
	t.Parallel()
	v := newVhost(t)
	createQueues(t, v, "a", "b")
	p := newPublisher(t, v)
	p.publish(t, "a", 2)
	p.publish(t, "b", 1)
	px := newProxy(t, amqpAddr, nil)
	host := map[string]string{"host": "amqp://guest:guest@" + px.Addr + "/" + esc(v)}
	a, b := parse(t, md("queueName", "a"), host), parse(t, md("queueName", "b"), host)
	pool := newPool(t)
	steps := []struct {
		name   string
		before func()
		wantA  []string // error substrings; nil means a value of wantAV
		wantAV float64
	}{
		{name: "both queues exist", wantAV: 2},
		{name: "a is deleted", before: func() { deleteQueue(t, v, "a") }, wantA: []string{`queue "a" does not exist`}},
		{name: "the next poll still works", wantA: []string{`queue "a" does not exist`}},
		{name: "a is back", before: func() { createQueues(t, v, "a"); p.publish(t, "a", 4) }, wantAV: 4},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		got := poll(t, pool, a, b)
		t.Run(st.name, func(t *testing.T) {
			wantSample(t, got[0], st.wantAV, st.wantAV > 0, st.wantA...)
			wantSample(t, got[1], 1, true)
		})
	}
	if n := px.Accepted(); n != 1 {
		t.Errorf("connections opened = %d, want 1", n)
	}
	wantOneConnection(t, v)
}

// An operator closing the connection (or a broker restart) costs no failed poll: the next
// poll reconnects on the same Source, and the old connection is not leaked.
func TestAMQPReconnectsAfterTheConnectionIsClosed(t *testing.T) {
	t.Parallel()
	v := newVhost(t)
	createQueues(t, v, "q")
	newPublisher(t, v).publish(t, "q", 3)
	tr := parse(t, md("queueName", "q"), map[string]string{"host": amqpURL(v)})
	pool := newPool(t)
	wantSample(t, poll(t, pool, tr)[0], 3, true)
	for round := range 2 {
		t.Run(fmt.Sprintf("closed by the management API, round %d", round+1), func(t *testing.T) {
			before := wantOneConnection(t, v)
			api(t, http.MethodDelete, "/connections/"+esc(before), nil)
			wantSample(t, poll(t, pool, tr)[0], 3, true)
			wantOneConnectionBut(t, v, before)
		})
	}
	if pool.Len() != 1 {
		t.Errorf("pool holds %d sources, want 1", pool.Len())
	}
}

// A broker that goes away fails polls with a clear error, and is used again, over one new
// connection, when it is back.
func TestAMQPBrokerGoesAwayAndComesBack(t *testing.T) {
	t.Parallel()
	v := newVhost(t)
	createQueues(t, v, "q")
	newPublisher(t, v).publish(t, "q", 2)
	px := newProxy(t, amqpAddr, nil)
	tr := parse(t, md("queueName", "q"), map[string]string{"host": "amqp://guest:guest@" + px.Addr + "/" + esc(v)})
	pool := newPool(t)
	wantSample(t, poll(t, pool, tr)[0], 2, true)
	px.Stop()
	wantSample(t, poll(t, pool, tr)[0], 0, false, "cannot connect to amqp://"+px.Addr, "connection refused")
	px.Start(t)
	wantSample(t, poll(t, pool, tr)[0], 2, true)
	wantSample(t, poll(t, pool, tr)[0], 2, true)
	if n := px.Accepted(); n != 2 {
		t.Errorf("connections opened = %d, want 2 (one before, one after)", n)
	}
	wantOneConnection(t, v)
}

// A broker that stops answering fails the poll at its timeout, and the next poll, once the
// broker answers again, works over a new connection.
func TestBrokerThatHangs(t *testing.T) {
	t.Parallel()
	v := newVhost(t)
	createQueues(t, v, "q")
	newPublisher(t, v).publish(t, "q", 2)
	for _, proto := range []struct{ name, target, scheme string }{{"amqp", amqpAddr, "amqp"}, {"http", "127.0.0.1:15672", "http"}} {
		t.Run(proto.name, func(t *testing.T) {
			px := newProxy(t, proto.target, nil)
			tr := parse(t, md("queueName", "q", "timeout", "400"), map[string]string{"host": proto.scheme + "://guest:guest@" + px.Addr + "/" + esc(v)})
			pool := newPool(t)
			wantSample(t, poll(t, pool, tr)[0], 2, true)
			px.Freeze(true)
			start := time.Now()
			wantSample(t, poll(t, pool, tr)[0], 0, false, px.Addr, "did not answer in time")
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("the poll took %s with a timeout of 400ms", took)
			}
			px.Freeze(false)
			wantSample(t, poll(t, pool, tr)[0], 2, true)
			if n := px.Accepted(); n != 2 {
				t.Errorf("connections opened = %d, want 2", n)
			}
		})
	}
}

// 100 targets on one vhost share one Source and one connection, and one poll reads them all.
func TestAMQPHundredTargetsShareOneConnection(t *testing.T) {
	t.Parallel()
	v := newVhost(t)
	px := newProxy(t, amqpAddr, nil)
	host := map[string]string{"host": "amqp://guest:guest@" + px.Addr + "/" + esc(v)}
	p := newPublisher(t, v)
	triggers := queuesWithTriggers(t, v, 100, host, func(q string, i int) { p.publish(t, q, i%4) })
	pool := newPool(t)
	for range 3 {
		for i, s := range poll(t, pool, triggers...) {
			wantSample(t, s, float64(i%4), i%4 > 0)
		}
	}
	if pool.Len() != 1 {
		t.Errorf("pool holds %d sources, want 1", pool.Len())
	}
	if n := px.Accepted(); n != 1 {
		t.Errorf("connections opened = %d, want 1", n)
	}
	wantOneConnection(t, v)
}

// queuesWithTriggers creates queues q000, q001, … on vhost, calls fill on each, and returns
// a trigger per queue.
func queuesWithTriggers(t testing.TB, vhost string, n int, secret map[string]string, fill func(queue string, i int)) []sources.Trigger {
	t.Helper()
	triggers := make([]sources.Trigger, n)
	for i := range triggers {
		q := fmt.Sprintf("q%03d", i)
		createQueues(t, vhost, q)
		if fill != nil {
			fill(q, i)
		}
		triggers[i] = parse(t, md("queueName", q), secret)
	}
	return triggers
}

// Over AMQP, whatever answers at the host's address is never quoted either.
func TestHostileAMQPEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer string
	}{
		{name: "words instead of AMQP", answer: sourcetest.Marker + "\r\n"},
		{name: "an HTTP page", answer: "HTTP/1.1 400 " + sourcetest.Marker + "\r\nContent-Length: 11\r\n\r\n" + sourcetest.Marker},
		{name: "AMQP's protocol header, then words", answer: "AMQP\x00\x00\x09\x01" + sourcetest.Marker},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := sourcetest.RawServer(t, tt.answer)
			tr := parse(t, md("queueName", "orders", "timeout", "1000"), map[string]string{"host": "amqp://guest:guest@" + addr + "/v"})
			got := poll(t, newPool(t), tr)[0]
			wantSample(t, got, 0, false, "amqp://"+addr)
			sourcetest.WantNoMarker(t, got.Err)
		})
	}
}
