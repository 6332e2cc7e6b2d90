package activemq

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
)

// maxBulkReads bounds the reads of one bulk request, so that its reply (a few hundred bytes
// a read, without stack traces) stays well under maxReplyBytes. Larger polls are split in
// chunks of near equal size, sent in parallel.
const maxBulkReads = 500

// plan splits reads into bulk requests, each of the reads that share an agent and an Origin
// header, and GETs for the rest. A read alone on its agent stays a GET: a bulk request of
// one saves no round trip, the GET is exactly the request KEDA makes, and it works on an
// agent whose policy allows GET only without first spending a refused POST. Once the agent
// has refused POST, every read is a GET.
func (b *jolokiaBackend) plan(reads []*jolokiaRead) (bulks [][]*jolokiaRead, gets []*jolokiaRead) {
	if b.postRefused.Load() {
		return nil, reads
	}
	groups := map[string][]*jolokiaRead{}
	var order []string
	for _, r := range reads {
		if r.agent == "" || r.mbean == "" {
			gets = append(gets, r)
			continue
		}
		k := r.agent + "\x00" + r.origin
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	for _, k := range order {
		if g := groups[k]; len(g) == 1 {
			gets = append(gets, g[0])
		} else {
			bulks = append(bulks, chunks(g, maxBulkReads)...)
		}
	}
	return bulks, gets
}

// chunks splits s into the fewest chunks of at most size elements, of near equal lengths.
func chunks[T any](s []T, size int) [][]T {
	n := (len(s) + size - 1) / size
	out := make([][]T, 0, n)
	for i := range n {
		out = append(out, s[i*len(s)/n:(i+1)*len(s)/n])
	}
	return out
}

// bulkRead is one request of a bulk request.
type bulkRead struct {
	Type      string     `json:"type"`
	MBean     string     `json:"mbean"`
	Attribute any        `json:"attribute"` // a name, or a list of names (countAttributes)
	Config    bulkConfig `json:"config"`
}

// bulkConfig are the processing options of one request. Without stack traces an error
// reply is a few hundred bytes, not kilobytes.
type bulkConfig struct {
	IncludeStackTrace bool `json:"includeStackTrace"`
}

// bulkRequest lists the reads of chunk, then one read of the MBean of each broker they
// name: its status tells an unknown queue (the broker answers) from an unknown broker
// (404) in the same round trip. probes maps a broker to the index of its read. A probe
// reads BrokerName, a plain getter, so that it costs the broker nothing. A counts read reads
// countAttributes in one read.
func bulkRequest(chunk []*jolokiaRead) (reqs []bulkRead, probes map[string]int) {
	reqs = make([]bulkRead, 0, len(chunk)+1)
	for _, r := range chunk {
		var attribute any = r.attribute
		if r.counts {
			attribute = countAttributes
		}
		reqs = append(reqs, bulkRead{Type: "read", MBean: r.mbean, Attribute: attribute})
	}
	probes = map[string]int{}
	for _, r := range chunk {
		if _, ok := probes[r.broker]; !ok && r.broker != "" {
			probes[r.broker] = len(reqs)
			reqs = append(reqs, bulkRead{Type: "read", MBean: brokerMBean(r.broker), Attribute: "BrokerName"})
		}
	}
	return reqs, probes
}

// post makes the reads of chunk, which share an agent and Origin header, in one bulk
// request: a POST to the agent of a list of reads, answered by a list of replies in the
// same order. It returns one result per read, or errPostRefused when the agent refuses the
// request for its method.
func (b *jolokiaBackend) post(ctx context.Context, chunk []*jolokiaRead) ([]result, error) {
	reqs, probes := bulkRequest(chunk)
	payload, err := json.Marshal(reqs)
	if err != nil {
		return failAll(len(chunk), fmt.Errorf("%s: %w", b.where, err)), nil
	}
	u := chunk[0].agent + "/"
	a, err := b.do(ctx, http.MethodPost, u, chunk[0].origin, payload)
	switch {
	case err != nil:
		return failAll(len(chunk), err), nil
	case a.code == http.StatusMethodNotAllowed, a.code == http.StatusNotImplemented:
		return nil, errPostRefused
	case a.code != http.StatusOK:
		return failAll(len(chunk), b.statusError(a.code, u)), nil
	}
	counts := make([]bool, len(reqs)) // the probes read no counts
	for i, r := range chunk {
		counts[i] = r.counts
	}
	reply, err := parseJolokiaBulk(a.body, counts)
	if err != nil {
		return failAll(len(chunk), fmt.Errorf("%s answered the bulk request to %s with HTTP 200 and a reply qscale cannot use: %w", b.where, u, err)), nil
	}
	if reply.whole != nil {
		return b.interpretWhole(chunk, *reply.whole)
	}
	if slices.ContainsFunc(reply.entries, func(e bulkEntry) bool { return e.reply.postRefused }) {
		return nil, errPostRefused
	}
	return b.interpretBulk(chunk, reply.entries, probes), nil
}

// interpretBulk turns the replies to the reads of chunk, and to their probes, into results.
func (b *jolokiaBackend) interpretBulk(chunk []*jolokiaRead, entries []bulkEntry, probes map[string]int) []result {
	out := make([]result, len(chunk))
	for i, r := range chunk {
		if err := entries[i].err; err != nil {
			out[i] = result{err: fmt.Errorf("%s answered the bulk request reading %s with HTTP 200 and a reply qscale cannot use: %w%s", b.where, r.url, err, hint(err))}
			continue
		}
		missing := func() error {
			probeStatus := 0
			if j, ok := probes[r.broker]; ok {
				probeStatus = entries[j].reply.Status
			}
			return b.missing(r, probeStatus)
		}
		out[i] = b.interpret(r, entries[i].reply, missing)
	}
	return out
}

// interpretWhole gives every read of chunk the one reply the agent made to the whole bulk
// request, as if it had answered each read with it; a 404 then says nothing of which of
// broker or queue is missing.
func (b *jolokiaBackend) interpretWhole(chunk []*jolokiaRead, reply jolokiaReply) ([]result, error) {
	if reply.postRefused {
		return nil, errPostRefused
	}
	out := make([]result, len(chunk))
	for i, r := range chunk {
		out[i] = b.interpret(r, reply, func() error { return b.missing(r, 0) })
	}
	return out, nil
}

// failAll returns n results that all carry err.
func failAll(n int, err error) []result {
	out := make([]result, n)
	for i := range out {
		out[i] = result{err: err}
	}
	return out
}
