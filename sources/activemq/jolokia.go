package activemq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// maxParallelReads bounds the Jolokia requests of one poll that run at once: enough to hide
// the round trips of many queues, few enough not to crowd the broker's HTTP threads.
const maxParallelReads = 8

// maxReplyBytes bounds what is read of one reply: a queue size fits in a few hundred bytes,
// an error with its stack trace in a few kilobytes, and a bulk reply of maxBulkReads reads
// (asked without stack traces; an unknown queue's is about 400 bytes) in some 200 KB. A
// larger reply is an error, never a reply cut short.
const maxReplyBytes = 1 << 20

// maxHeaderBytes bounds the headers of an answer.
const maxHeaderBytes = 64 << 10

// jolokiaBackend reads QueueSize attributes through Jolokia with one keep-alive client.
type jolokiaBackend struct {
	base           string // scheme://host:port; never holds a password
	where          string // the agent, for messages
	user, password string
	client         *http.Client
	// postRefused is set once the agent refuses a bulk request for its method: every read
	// is a GET from then on, for the life of the backend.
	postRefused atomic.Bool
}

func newJolokiaBackend(c *Config) *jolokiaBackend {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: maxParallelReads,
		// Polls are seconds apart: keep the connections between them.
		IdleConnTimeout:     5 * time.Minute,
		TLSHandshakeTimeout: 10 * time.Second,
		// The headers of an answer are a few hundred bytes; Go's default allows 10 MiB.
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
	return &jolokiaBackend{
		base:     c.read.base(),
		where:    "the Jolokia agent at " + c.read.base(),
		user:     c.Username,
		password: c.Password,
		client:   &http.Client{Transport: tr},
	}
}

func (b *jolokiaBackend) close() { b.client.CloseIdleConnections() }

// read makes each distinct request once.
func (b *jolokiaBackend) read(ctx context.Context, cs []*Config) []result {
	byKey := map[string]*result{}
	keys := make([]string, len(cs))
	var reads []*jolokiaRead
	for i, c := range cs {
		r := &c.read
		keys[i] = r.key()
		if _, ok := byKey[keys[i]]; !ok {
			byKey[keys[i]] = &result{}
			reads = append(reads, r)
		}
	}
	b.readAll(ctx, reads, byKey)
	out := make([]result, len(cs))
	for i, k := range keys {
		out[i] = *byKey[k]
	}
	return out
}

// readAll makes the reads: in bulk requests where plan groups them, by GET otherwise, up to
// maxParallelReads requests at once. Reads whose bulk request the agent refuses for its
// method are made again by GET in the same poll, so that the refusal costs one round trip
// and no value.
func (b *jolokiaBackend) readAll(ctx context.Context, reads []*jolokiaRead, into map[string]*result) {
	bulks, gets := b.plan(reads)
	var mu sync.Mutex
	var refused []*jolokiaRead
	jobs := make([]func(), 0, len(bulks)+len(gets))
	for _, chunk := range bulks {
		jobs = append(jobs, func() {
			res, err := b.post(ctx, chunk)
			if errors.Is(err, errPostRefused) {
				mu.Lock()
				refused = append(refused, chunk...)
				mu.Unlock()
				return
			}
			for i, r := range chunk {
				*into[r.key()] = res[i] // each job writes only its own entries
			}
		})
	}
	jobs = append(jobs, b.getJobs(ctx, gets, into)...)
	runJobs(jobs)
	if len(refused) > 0 {
		b.postRefused.Store(true)
		runJobs(b.getJobs(ctx, refused, into))
	}
}

// getJobs returns one job per read, each making the read by GET.
func (b *jolokiaBackend) getJobs(ctx context.Context, reads []*jolokiaRead, into map[string]*result) []func() {
	jobs := make([]func(), len(reads))
	for i, r := range reads {
		jobs[i] = func() { *into[r.key()] = b.get(ctx, r) }
	}
	return jobs
}

// runJobs runs jobs, up to maxParallelReads at once, and returns when all have ended.
func runJobs(jobs []func()) {
	if len(jobs) == 1 {
		jobs[0]() // the common single read needs no goroutine
		return
	}
	ch := make(chan func(), len(jobs))
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	var wg sync.WaitGroup
	for range min(len(jobs), maxParallelReads) {
		wg.Go(func() {
			for j := range ch {
				j()
			}
		})
	}
	wg.Wait()
}

// get reads one queue's size, and its counts for a counts read, by GET.
func (b *jolokiaBackend) get(ctx context.Context, r *jolokiaRead) result {
	reply, err := b.fetch(ctx, r, r.url, r.counts)
	if err != nil {
		return result{err: err}
	}
	return b.interpret(r, reply, func() error { return b.notFound(ctx, r) })
}

// interpret turns Jolokia's reply to read r into a result; missing explains a 404. Errors
// give Jolokia's status with words of ours: Jolokia's own (error, error_type) may quote
// whatever the URL reads.
func (b *jolokiaBackend) interpret(r *jolokiaRead, reply jolokiaReply, missing func() error) result {
	switch reply.Status {
	case http.StatusOK:
		return result{size: reply.Value, enqueued: reply.Enqueued, dequeued: reply.Dequeued, counted: r.counts}
	case http.StatusNotFound:
		return result{err: missing()}
	case http.StatusForbidden:
		return result{err: fmt.Errorf("%s refused to read %s: its access policy forbids it (Jolokia status 403)", b.where, r.url)}
	case http.StatusBadRequest:
		return result{err: fmt.Errorf("%s refused the request to read %s as malformed (Jolokia status 400): does the URL name an MBean and an attribute?", b.where, r.url)}
	}
	return result{err: fmt.Errorf("%s could not read %s (Jolokia status %d)", b.where, r.url, reply.Status)}
}

// notFound tells an unknown queue from an unknown broker: Jolokia answers 404 to both, and
// to a read of the broker's own MBean (a numeric attribute, as fetch expects) only for the
// second.
func (b *jolokiaBackend) notFound(ctx context.Context, r *jolokiaRead) error {
	probeStatus := 0
	if r.agent != "" {
		probe := r.agent + "/read/" + brokerMBean(jolokiaEscape(r.broker)) + "/TotalMessageCount"
		if reply, err := b.fetch(ctx, r, probe, false); err == nil {
			probeStatus = reply.Status
		}
	}
	return b.missing(r, probeStatus)
}

// missing explains a 404 to read r from the status of a read of its broker's MBean: 404
// means the broker is unknown, 200 that the queue is; anything else (0: no probe) leaves
// it open.
func (b *jolokiaBackend) missing(r *jolokiaRead, probeStatus int) error {
	switch probeStatus {
	case http.StatusNotFound:
		return brokerMissing(r.broker, b.base)
	case http.StatusOK:
		return queueMissing(r.queue, r.broker, b.base)
	}
	return fmt.Errorf("queue %q or broker %q %w at %s (check destinationName and brokerName)", r.queue, r.broker, errNotFound, b.base)
}

// brokerMBean is the name of a broker's MBean.
func brokerMBean(broker string) string { return "org.apache.activemq:type=Broker,brokerName=" + broker }

// fetch GETs a Jolokia URL and parses the reply, of a counts read when counts is set;
// answers other than HTTP 200 are errors.
func (b *jolokiaBackend) fetch(ctx context.Context, r *jolokiaRead, u string, counts bool) (jolokiaReply, error) {
	a, err := b.do(ctx, http.MethodGet, u, r.origin, nil)
	if err != nil {
		return jolokiaReply{}, err
	}
	if a.code != http.StatusOK {
		return jolokiaReply{}, b.statusError(a.code, u)
	}
	reply, err := parseJolokia(a.body, counts)
	if err != nil {
		return reply, fmt.Errorf("%s answered the read of %s with HTTP 200 and a reply qscale cannot use: %w%s", b.where, u, err, hint(err))
	}
	return reply, nil
}

// answer is an HTTP answer: its status code, and its body when the code is 200.
type answer struct {
	code int
	body []byte
}

// do sends one request to the agent: GET when payload is nil, else a POST of payload as
// JSON. The credentials go in a header, never in the URL, so no error can print them; the
// Origin header is sent as KEDA sends it, since Jolokia's CORS policy may check it. Only
// the body of a 200 is read, of at most maxReplyBytes: a larger one is an error. Other
// answers are told by their code alone.
func (b *jolokiaBackend) do(ctx context.Context, method, u, origin string, payload []byte) (answer, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return answer{}, fmt.Errorf("%s: %w", b.where, err)
	}
	if b.user != "" {
		req.SetBasicAuth(b.user, b.password)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Origin", origin)
	resp, err := b.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the whole URL
		}
		return answer{}, explainDial(err, b.where)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxReplyBytes)) // lets the connection be reused
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return answer{code: resp.StatusCode}, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	switch {
	case err != nil:
		return answer{}, explainDial(err, b.where)
	case len(data) > maxReplyBytes:
		return answer{}, fmt.Errorf("%s answered more than %d MiB to one request, the most qscale reads", b.where, maxReplyBytes>>20)
	}
	return answer{code: resp.StatusCode, body: data}, nil
}

// statusError explains an HTTP answer other than 200 to a request of u, from its code: the
// body and the status line's words are the server's, and are not repeated.
func (b *jolokiaBackend) statusError(code int, u string) error {
	switch code {
	case http.StatusUnauthorized:
		if b.user == "" {
			return fmt.Errorf("%s asks for a login: set username and password in the Secret named by authenticationRef", b.where)
		}
		return fmt.Errorf("%s refused the login of user %q: wrong username or password", b.where, b.user)
	case http.StatusForbidden:
		return fmt.Errorf("%s refused user %q (a role it lacks, or a CORS policy that refuses the Origin header: see corsHeader)", b.where, b.user)
	case http.StatusNotFound:
		return fmt.Errorf("no Jolokia agent at %s (HTTP 404): is managementEndpoint the web console's host:port, or the path of restAPITemplate right?", u)
	}
	if text := http.StatusText(code); text != "" {
		return fmt.Errorf("%s answered HTTP %d (%s)", b.where, code, text)
	}
	return fmt.Errorf("%s answered HTTP %d", b.where, code)
}
