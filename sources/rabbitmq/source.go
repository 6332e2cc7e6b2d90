// Package rabbitmq reads RabbitMQ queue depth and publish rates, with the semantics and
// parameter names of KEDA's RabbitMQ scaler, and the counts of messages published and
// consumed that backlog-age triggers report.
//
// Config holds a trigger's parameters; parsePage is the pure parser of the management API's
// queue listing, and measure and aggregate are the pure arithmetic over the queues a trigger
// selects; Source is the I/O around them. Whatever answers at a host URL is untrusted: a
// listing that is malformed, or holds a figure that is no count, is an error (listingError),
// never a value of 0, and no error repeats the words of an answer.
//
// One Source serves every trigger of a connection: over AMQP one long-lived connection per broker, vhost and credentials, with a
// few channels for passive declares (one per distinct queue per poll); over the management
// API one keep-alive HTTP client per endpoint and credentials, with one queue listing per
// vhost per poll, however many triggers read it.
package rabbitmq

import (
	"context"

	"github.com/qscale/qscale/sources"
)

// Kind registers the rabbitmq trigger type; targetBacklogAge replaces value and queueLength.
var Kind = sources.NewKind(Open, "value", "queueLength")

// Source polls the triggers of one connection: AMQP or the management API, as the first
// trigger's protocol says (triggers share a Source only when they share the protocol).
type Source struct {
	b backend
}

// backend is one way of reading queues: it returns one result per config, in order, from
// one round of requests. It is never called concurrently.
type backend interface {
	read(ctx context.Context, cs []*Config) []result
	close()
}

// result is what a backend read for one trigger.
type result struct {
	queues   []queueStats
	err      error
	warnings []sources.Warning
}

var _ sources.TypedSource[*Config] = (*Source)(nil)

// Open prepares the connection that c names. It does not dial: the first Poll does, so that
// an unreachable broker is reported, and retried, as a poll error.
func Open(c *Config) (*Source, error) {
	var (
		b   backend
		err error
	)
	if c.protocol() == protocolAMQP {
		b, err = newAMQPBackend(c)
	} else {
		b, err = newHTTPBackend(c)
	}
	if err != nil {
		return nil, err
	}
	return &Source{b: b}, nil
}

// Close implements sources.TypedSource.
func (s *Source) Close() error {
	s.b.close()
	return nil
}

// Poll implements sources.TypedSource: one round of broker requests serves every config.
func (s *Source) Poll(ctx context.Context, cs []*Config) []sources.Sample {
	out := make([]sources.Sample, len(cs))
	for j, r := range s.b.read(ctx, cs) {
		if r.err != nil {
			out[j] = sources.Sample{Err: r.err, Warnings: r.warnings}
			continue
		}
		out[j] = cs[j].measure(r.queues)
		out[j].Warnings = r.warnings
	}
	return out
}
