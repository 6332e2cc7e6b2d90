package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// maxPages bounds one listing: 1,000 pages of up to 500 queues. A listing of more pages is
// an error, never a listing cut short.
const maxPages = 1000

// maxHeaderBytes bounds the headers of an answer of the management API.
const maxHeaderBytes = 64 << 10

// httpBackend reads queues through the management API with one keep-alive client.
//
// Depth comes from the queue listing with disable_stats=true&enable_queue_totals=true,
// which the broker answers from the queues themselves: exact at once. The per-queue figures
// KEDA reads come from statistics sampled every 5 s and trail the real depth by 5–9 s. Rates
// and the counts of messages published and consumed exist only in those statistics, so
// MessageRate triggers add a second listing of just the rates, and backlog-age triggers the
// counts in the same listing. Each is one listing per vhost per poll, paged, whatever the
// number of triggers.
type httpBackend struct {
	base           string // scheme://host:port[prefix]; never holds a password
	user, password string
	client         *http.Client
	compiled       map[string]queueMatcher // by useRegex and queueName; only read touches it
}

func newHTTPBackend(c *Config) (*httpBackend, error) {
	user, password := c.credentials()
	b := &httpBackend{base: c.Host.endpoint().base(), user: user, password: password}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		// Polls are seconds apart: keep the connection between them.
		IdleConnTimeout:     5 * time.Minute,
		TLSHandshakeTimeout: 10 * time.Second,
		// The headers of an answer are a few hundred bytes; Go's default allows 10 MiB.
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
	if c.Host.secure() {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.base, err)
		}
		tr.TLSClientConfig = tc
	}
	b.client = &http.Client{Transport: tr}
	return b, nil
}

func (b *httpBackend) close() { b.client.CloseIdleConnections() }

func (b *httpBackend) read(ctx context.Context, cs []*Config) []result {
	out := make([]result, len(cs))
	ms := b.matchers(cs)
	byVhost := map[string]*batch{}
	var batches []*batch
	for i, c := range cs {
		v := c.vhost()
		bt, ok := byVhost[v]
		if !ok {
			bt = &batch{vhost: v}
			byVhost[v] = bt
			batches = append(batches, bt)
		}
		bt.idx, bt.cs, bt.ms = append(bt.idx, i), append(bt.cs, c), append(bt.ms, ms[i])
	}
	var wg sync.WaitGroup
	for _, bt := range batches {
		wg.Go(func() { b.readVhost(ctx, bt, out) })
	}
	wg.Wait()
	return out
}

// matchers returns each config's queue matcher, compiling each regex once while it is in use
// rather than once per poll.
func (b *httpBackend) matchers(cs []*Config) []queueMatcher {
	compiled := make(map[string]queueMatcher, len(cs))
	out := make([]queueMatcher, len(cs))
	for i, c := range cs {
		key := strconv.FormatBool(c.UseRegex) + c.QueueName
		m, ok := compiled[key]
		if !ok {
			if m, ok = b.compiled[key]; !ok {
				m, _ = c.matcher() // Validate compiled it already
			}
			compiled[key] = m
		}
		out[i] = m
	}
	b.compiled = compiled
	return out
}

// batch is the triggers of one poll that read one vhost: cs[j] is out[idx[j]].
type batch struct {
	vhost string
	idx   []int
	cs    []*Config
	ms    []queueMatcher
}

// readVhost serves a batch from one depth listing and, when some of its triggers read rates
// or counts, one statistics listing.
func (b *httpBackend) readVhost(ctx context.Context, bt *batch, out []result) {
	ctx, cancel := context.WithTimeout(ctx, shortestTimeout(bt.cs))
	defer cancel()
	all, rated := bt.listings()
	depths, err := b.list(ctx, bt.vhost, all)
	var rates map[string]queueStats
	if err == nil && rated.needed {
		rates, err = b.list(ctx, bt.vhost, rated)
	}
	for j, i := range bt.idx {
		if err != nil {
			out[i].err = err
			continue
		}
		out[i] = b.pick(bt.cs[j], bt.ms[j], bt.vhost, depths, rates)
	}
}

// listing is what one listing of a vhost asks for: which queues and how many per page, and
// for the statistics listing (stats) whether with the message counts.
type listing struct {
	needed        bool
	stats, counts bool
	filter        string
	pageSize      int
}

// listings returns the depth listing every trigger needs and the statistics listing that
// MessageRate and backlog-age triggers need, with counts for the latter. Pages are as large
// as the largest pageSize asked for.
func (bt *batch) listings() (all, rated listing) {
	var rms []queueMatcher
	for j, c := range bt.cs {
		all.pageSize = max(all.pageSize, c.PageSize)
		counts := c.ScalesOnBacklogAge()
		if c.mode() == ModeMessageRate || counts {
			rms = append(rms, bt.ms[j])
			rated.pageSize = max(rated.pageSize, c.PageSize)
			rated.counts = rated.counts || counts
		}
	}
	all.needed, all.filter = true, nameFilter(bt.ms)
	rated.needed, rated.stats, rated.filter = len(rms) > 0, true, nameFilter(rms)
	return all, rated
}

// pick selects a trigger's queues from the listings. The names of the queues a regex selects
// come from the broker: errors name the pattern, never them.
func (b *httpBackend) pick(c *Config, m queueMatcher, vhost string, depths, rates map[string]queueStats) result {
	qs, err := selectQueues(m, depths)
	if err != nil {
		return result{err: queueMissing(c.QueueName, vhost, b.base)}
	}
	which := func() string {
		if c.UseRegex {
			return fmt.Sprintf("a queue that queueName %q matches", c.QueueName)
		}
		return fmt.Sprintf("queue %q", c.QueueName)
	}
	for k, q := range qs {
		if q.unreadable != "" {
			return result{err: fmt.Errorf("the management API at %s lists %s in vhost %q without a message count (state %s): is the queue running?", b.base, which(), vhost, q.unreadable)}
		}
		st, ok := rates[q.Name]
		switch {
		case ok:
			qs[k].PublishRate, qs[k].Published, qs[k].Consumed, qs[k].counted = st.PublishRate, st.Published, st.Consumed, st.counted
		case c.ScalesOnBacklogAge():
			return result{err: fmt.Errorf("the management API at %s lists %s in vhost %q with its depth but not with its statistics (was it created or deleted between the two requests?)", b.base, which(), vhost)}
		}
	}
	r := result{queues: qs}
	if c.UseRegex && len(qs) == 0 {
		r.warnings = append(r.warnings, noMatchWarning(c.QueueName, vhost))
	}
	return r
}

// list reads every page of a vhost's queue listing. A filter the broker's regex engine
// refuses (Go accepted it: the syntaxes differ at the edges) is dropped, and the whole vhost
// listed: each trigger picks its queues again anyway.
func (b *httpBackend) list(ctx context.Context, vhost string, l listing) (map[string]queueStats, error) {
	listed, err := b.listPages(ctx, vhost, l)
	var bad *badRequest
	if errors.As(err, &bad) && l.filter != "" {
		l.filter = ""
		listed, err = b.listPages(ctx, vhost, l)
	}
	return listed, err
}

// listPages reads a listing page by page, up to the page_count of the last page read. A
// queue that pages list twice (the pages shift when queues come and go between requests) is
// taken from the later page, which is fresher.
func (b *httpBackend) listPages(ctx context.Context, vhost string, l listing) (map[string]queueStats, error) {
	listed := map[string]queueStats{}
	size := max(1, l.pageSize)
	for p := 1; ; p++ {
		body, err := b.get(ctx, vhost, listQuery(l, p))
		if err != nil {
			return nil, err
		}
		pg, err := parsePage(body, pageRequest{number: p, size: size, rates: l.stats, counts: l.counts})
		if err != nil {
			return nil, fmt.Errorf("the management API at %s answered page %d of the queues of vhost %q with HTTP 200 and a listing qscale cannot use: %w", b.base, p, vhost, err)
		}
		for _, q := range pg.queues {
			listed[q.Name] = q
		}
		if p >= pg.pageCount { // parsePage checked that pageCount is at most maxPages
			return listed, nil
		}
	}
}

// listQuery is the query of one page of a listing: fresh totals without statistics for
// depth, or just the publish rate, and the counts when asked for, for statistics.
func listQuery(l listing, pageNo int) url.Values {
	q := url.Values{}
	switch {
	case l.counts:
		q.Set("columns", "name,message_stats.publish_details.rate,message_stats.publish,"+
			"message_stats.ack,message_stats.deliver_no_ack,message_stats.get_no_ack")
	case l.stats:
		q.Set("columns", "name,message_stats.publish_details.rate")
	default:
		q.Set("disable_stats", "true")
		q.Set("enable_queue_totals", "true")
		q.Set("columns", "name,state,messages,messages_ready")
	}
	q.Set("page", strconv.Itoa(pageNo))
	q.Set("page_size", strconv.Itoa(max(1, l.pageSize)))
	if l.filter != "" {
		q.Set("name", l.filter)
		q.Set("use_regex", "true")
	}
	return q
}

// notFound tells an unknown vhost from a base URL that is not the management API: the API
// answers 404 to both, and /api/overview only to the second.
func (b *httpBackend) notFound(ctx context.Context, vhost string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/api/overview", nil)
	if err == nil {
		if b.user != "" {
			req.SetBasicAuth(b.user, b.password)
		}
		var resp *http.Response
		if resp, err = b.client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound {
				return fmt.Errorf("no management API at %s (/api/overview answered 404): is the path prefix in host right?", b.base)
			}
		}
	}
	return fmt.Errorf("vhost %q does not exist on %s", vhost, b.base)
}

// badRequest is a 400 answer: the broker refused the query.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

// get fetches one page of a vhost's queues and returns the answer's body, of at most
// maxPageBytes. The credentials go in a header, never in the URL, so no error can print them.
func (b *httpBackend) get(ctx context.Context, vhost string, query url.Values) ([]byte, error) {
	u := b.base + "/api/queues/" + url.PathEscape(vhost) + "?" + query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.base, err)
	}
	if b.user != "" {
		req.SetBasicAuth(b.user, b.password)
	}
	where := "the management API at " + b.base
	resp, err := b.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the whole URL
		}
		return nil, explainDial(err, where)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxPageBytes)) // lets the connection be reused
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return nil, b.statusError(ctx, resp.StatusCode, vhost)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes+1))
	switch {
	case err != nil:
		return nil, explainDial(err, where)
	case len(body) > maxPageBytes:
		return nil, fmt.Errorf("%s answered more than %d MiB for one page of the queues of vhost %q, the most qscale reads", where, maxPageBytes>>20, vhost)
	}
	return body, nil
}

// statusError explains an answer other than 200 from its status code. The body is never
// read: whatever answers at the host's URL would have its words shown to the tenant.
func (b *httpBackend) statusError(ctx context.Context, code int, vhost string) error {
	switch code {
	case http.StatusUnauthorized:
		return fmt.Errorf("the management API at %s refused the login of user %q: wrong username or password, or a user without the monitoring or management tag (HTTP 401)", b.base, b.user)
	case http.StatusForbidden:
		return fmt.Errorf("the management API at %s refused user %q (HTTP 403): does it have permission on vhost %q?", b.base, b.user, vhost)
	case http.StatusNotFound:
		return b.notFound(ctx, vhost)
	case http.StatusBadRequest:
		return &badRequest{msg: fmt.Sprintf("the management API at %s refused the query (HTTP 400)", b.base)}
	}
	return fmt.Errorf("the management API at %s answered %s", b.base, httpStatus(code))
}

// httpStatus names a status code as the standard does, never as the server's status line
// does: a server may put anything there.
func httpStatus(code int) string {
	if text := http.StatusText(code); text != "" {
		return fmt.Sprintf("HTTP %d (%s)", code, text)
	}
	return fmt.Sprintf("HTTP %d", code)
}
