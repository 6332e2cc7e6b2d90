// Package activemq reads the size of ActiveMQ 5 queues, with the semantics and parameter
// names of KEDA's ActiveMQ scaler.
//
// Config holds a trigger's parameters; parseJolokia, parseJolokiaBulk and parseStats are the
// pure parsers of the broker's answers; Source is the I/O around them. Whatever answers at an
// endpoint is untrusted: a reply that is malformed, or holds a size that is no count, is an
// error (badReply), never a value of 0, and no error repeats the words of a reply.
//
// One Source serves every trigger of a connection, over one of two protocols:
//
//   - jolokia (KEDA's way, the default): reads of the queue's QueueSize attribute through
//     the Jolokia agent of the web console, on one keep-alive HTTP client per endpoint and
//     credentials. A poll reads each distinct queue once: the queues of one agent together
//     in one bulk request (a POST of a list of reads), a queue alone by KEDA's GET. An agent
//     whose policy refuses POST is read by GETs, run concurrently, from then on;
//   - stomp (qscale's own, for brokers without the web console): queries to the statistics
//     plugin over one long-lived STOMP connection per endpoint and credentials. A poll sends
//     every query, then collects the replies by correlation id from one reply subscription:
//     one round trip however many triggers share the connection.
//
// A backlog-age trigger also reports the queue's counts of messages enqueued and dequeued,
// read with its size in the same request: EnqueueCount and DequeueCount with QueueSize in
// one Jolokia read (GET …/QueueSize,EnqueueCount,DequeueCount, or a read of that attribute
// list in a bulk request), or enqueueCount and dequeueCount from the statistics reply.
package activemq

import (
	"context"
	"errors"
	"time"

	"github.com/qscale/qscale/sources"
)

// Kind registers the activemq trigger type; targetBacklogAge replaces targetQueueSize.
var Kind = sources.NewKind(Open, "targetQueueSize")

// pollTimeout bounds one poll when the caller's context allows longer: a broker that stops
// answering must not hold a poll for long.
const pollTimeout = 5 * time.Second

// Source polls the triggers of one connection, over the protocol of the first trigger
// (triggers share a Source only when they share the protocol).
type Source struct {
	b backend
}

// backend is one protocol: it returns one result per config, in order, from one round of
// requests. It is never called concurrently.
type backend interface {
	read(ctx context.Context, cs []*Config) []result
	close()
}

// result is what a backend read for one trigger: a queue size, with the queue's counts of
// messages enqueued and dequeued when they were read (counted), or an error.
type result struct {
	size               float64
	enqueued, dequeued float64
	counted            bool
	err                error
}

var _ sources.TypedSource[*Config] = (*Source)(nil)

// Open prepares the connection that c names. It does not dial: the first Poll does, so that
// an unreachable broker is reported, and retried, as a poll error.
func Open(c *Config) (*Source, error) {
	if c.Protocol == ProtocolSTOMP {
		return &Source{b: newSTOMPBackend(c)}, nil
	}
	return &Source{b: newJolokiaBackend(c)}, nil
}

// Close implements sources.TypedSource.
func (s *Source) Close() error {
	s.b.close()
	return nil
}

// Poll implements sources.TypedSource: one round of broker requests serves every config.
func (s *Source) Poll(ctx context.Context, cs []*Config) []sources.Sample {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	out := make([]sources.Sample, len(cs))
	for i, r := range s.b.read(ctx, cs) {
		out[i] = r.sample(cs[i])
	}
	return out
}

// sample is the trigger's sample: the queue size and, for a backlog-age trigger, the counts.
func (r result) sample(c *Config) sources.Sample {
	switch {
	case r.err != nil:
		return sources.Sample{Err: r.err}
	case !c.ScalesOnBacklogAge():
		return sources.Sample{Value: r.size, Active: c.active(r.size)}
	case !r.counted: // the backend reads counts for every backlog-age trigger: never
		return sources.Sample{Err: errors.New("the counts of messages enqueued and dequeued were not read")}
	}
	return sources.Sample{Value: r.size, Active: c.active(r.size),
		Counters: &sources.Counters{Backlog: r.size, Produced: r.enqueued, Consumed: r.dequeued}}
}
