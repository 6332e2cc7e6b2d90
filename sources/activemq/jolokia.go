package activemq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// maxParallelReads bounds the Jolokia reads of one poll that run at once: enough to hide
// the round trips of many queues, few enough not to crowd the broker's HTTP threads.
const maxParallelReads = 8

// maxReplyBytes bounds what is read of one reply: a queue size fits in a few hundred bytes,
// an error with its stack trace in a few kilobytes.
const maxReplyBytes = 1 << 20

// jolokiaBackend reads QueueSize attributes through Jolokia with one keep-alive client.
type jolokiaBackend struct {
	base           string // scheme://host:port; never holds a password
	where          string // the agent, for messages
	user, password string
	client         *http.Client
}

func newJolokiaBackend(c *Config) *jolokiaBackend {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: maxParallelReads,
		// Polls are seconds apart: keep the connections between them.
		IdleConnTimeout:     5 * time.Minute,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &jolokiaBackend{
		base:     c.jolokia().base(),
		where:    "the Jolokia agent at " + c.jolokia().base(),
		user:     c.Username,
		password: c.Password,
		client:   &http.Client{Transport: tr},
	}
}

func (b *jolokiaBackend) close() { b.client.CloseIdleConnections() }

// read makes each distinct request once, up to maxParallelReads at a time.
func (b *jolokiaBackend) read(ctx context.Context, cs []*Config) []result {
	byKey := map[string]*result{}
	keys := make([]string, len(cs))
	var reads []*jolokiaRead
	for i, c := range cs {
		r := c.jolokia()
		keys[i] = r.key()
		if _, ok := byKey[keys[i]]; !ok {
			byKey[keys[i]] = &result{}
			reads = append(reads, r)
		}
	}
	if len(reads) == 1 {
		*byKey[keys[0]] = b.get(ctx, reads[0])
	} else {
		b.getAll(ctx, reads, byKey)
	}
	out := make([]result, len(cs))
	for i, k := range keys {
		out[i] = *byKey[k]
	}
	return out
}

func (b *jolokiaBackend) getAll(ctx context.Context, reads []*jolokiaRead, into map[string]*result) {
	jobs := make(chan *jolokiaRead, len(reads))
	for _, r := range reads {
		jobs <- r
	}
	close(jobs)
	var wg sync.WaitGroup
	for range min(len(reads), maxParallelReads) {
		wg.Go(func() {
			for r := range jobs {
				*into[r.key()] = b.get(ctx, r) // each goroutine writes only its own entries
			}
		})
	}
	wg.Wait()
}

// get reads one queue's size. The credentials go in a header, never in the URL, so no
// error can print them.
func (b *jolokiaBackend) get(ctx context.Context, r *jolokiaRead) result {
	reply, err := b.fetch(ctx, r, r.url)
	if err != nil {
		return result{err: err}
	}
	switch reply.Status {
	case http.StatusOK:
		return result{size: reply.Value}
	case http.StatusNotFound:
		return result{err: b.notFound(ctx, r)}
	case http.StatusForbidden:
		return result{err: fmt.Errorf("%s refused to read %s: its access policy forbids it (%s)", b.where, r.url, reply.Error)}
	}
	return result{err: fmt.Errorf("%s could not read %s: %s (status %d)", b.where, r.url, firstLine(reply.Error), reply.Status)}
}

// notFound tells an unknown queue from an unknown broker: Jolokia answers 404 to both, and
// to a read of the broker's own MBean (a numeric attribute, as fetch expects) only for the
// second.
func (b *jolokiaBackend) notFound(ctx context.Context, r *jolokiaRead) error {
	if r.agent != "" {
		probe := r.agent + "/read/org.apache.activemq:type=Broker,brokerName=" + jolokiaEscape(r.broker) + "/TotalMessageCount"
		if reply, err := b.fetch(ctx, r, probe); err == nil {
			switch reply.Status {
			case http.StatusNotFound:
				return brokerMissing(r.broker, b.base)
			case http.StatusOK:
				return queueMissing(r.queue, r.broker, b.base)
			}
		}
	}
	return fmt.Errorf("queue %q or broker %q %w at %s (check destinationName and brokerName)", r.queue, r.broker, errNotFound, b.base)
}

// fetch GETs a Jolokia URL and parses the reply; answers other than HTTP 200 are errors.
func (b *jolokiaBackend) fetch(ctx context.Context, r *jolokiaRead, u string) (jolokiaReply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return jolokiaReply{}, fmt.Errorf("%s: %w", b.where, err)
	}
	if b.user != "" {
		req.SetBasicAuth(b.user, b.password)
	}
	req.Header.Set("Origin", r.origin) // as KEDA sends it: Jolokia's CORS policy may check it
	resp, err := b.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the whole URL
		}
		return jolokiaReply{}, explainDial(err, b.where)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxReplyBytes)) // lets the connection be reused
		_ = resp.Body.Close()
	}()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if err != nil {
		return jolokiaReply{}, explainDial(err, b.where)
	}
	if resp.StatusCode != http.StatusOK {
		return jolokiaReply{}, b.statusError(resp, u, body)
	}
	reply, err := parseJolokia(body)
	if err != nil {
		return jolokiaReply{}, fmt.Errorf("%s, reading %s: %w", b.where, u, err)
	}
	return reply, nil
}

// statusError explains an HTTP answer other than 200.
func (b *jolokiaBackend) statusError(resp *http.Response, u string, body []byte) error {
	switch resp.StatusCode {
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
	return fmt.Errorf("%s answered %s: %.200s", b.where, resp.Status, strings.TrimSpace(string(body)))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
