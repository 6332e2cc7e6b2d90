// Package rabbitmq reads RabbitMQ queue depth and publish rates, with the semantics and
// parameter names of KEDA's RabbitMQ scaler.
//
// Config holds a trigger's parameters, and measure and aggregate are the pure arithmetic over
// the queues it selects; Source is the I/O around them. One Source serves every trigger of a
// connection: over AMQP one long-lived connection per broker, vhost and credentials, with a
// few channels for passive declares (one per distinct queue per poll); over the management
// API one keep-alive HTTP client per endpoint and credentials, with one queue listing per
// vhost per poll, however many triggers read it.
package rabbitmq

import (
	"context"
	"fmt"

	"github.com/qscale/qscale/sources"
)

// Kind registers the rabbitmq trigger type.
var Kind = sources.Kind{
	NewConfig: func() sources.Config { return &Config{} },
	Open: func(cfg sources.Config) (sources.Source, error) {
		c, ok := cfg.(*Config)
		if !ok {
			return nil, fmt.Errorf("rabbitmq: cannot open a %T", cfg)
		}
		return Open(c)
	},
}

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

var _ sources.Source = (*Source)(nil)

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

// Close implements sources.Source.
func (s *Source) Close() error {
	s.b.close()
	return nil
}

// Poll implements sources.Source: one round of broker requests serves every config.
func (s *Source) Poll(ctx context.Context, cfgs []sources.Config) []sources.Sample {
	out := make([]sources.Sample, len(cfgs))
	cs := make([]*Config, 0, len(cfgs))
	at := make([]int, 0, len(cfgs))
	for i, cfg := range cfgs {
		c, ok := cfg.(*Config)
		if !ok {
			out[i].Err = fmt.Errorf("rabbitmq: cannot poll a %T", cfg)
			continue
		}
		cs, at = append(cs, c), append(at, i)
	}
	if len(cs) == 0 {
		return out
	}
	for j, r := range s.b.read(ctx, cs) {
		if r.err != nil {
			out[at[j]] = sources.Sample{Err: r.err, Warnings: r.warnings}
			continue
		}
		smp := cs[j].measure(r.queues)
		smp.Warnings = r.warnings
		out[at[j]] = smp
	}
	return out
}
