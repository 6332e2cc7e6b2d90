// Package sources turns trigger configurations into samples of queue depth.
//
// A trigger type (kafka, rabbitmq, …) is a Kind in a Registry: a config struct whose fields
// carry `param` tags, parsed by the shared Decode, and an Open function that connects to a
// broker; NewKind builds one from a TypedSource. Triggers whose Config reports the same Connection share one Source, and a Pool polls
// every trigger of a connection with one batched Source.Poll, so the number of broker
// connections and requests grows with the brokers in use, not with the workloads that read
// them.
package sources

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Source reads the current value of every trigger that shares one broker connection.
//
// Poll is given the configs of triggers whose Connection equals the one the Source was opened
// for, and returns exactly one Sample per config, in the same order. One round of broker
// requests must serve all of them, however many there are. A value that could not be read is
// never reported as 0: its Sample carries Err instead. The Pool never calls Poll concurrently
// on one Source, and calls Close once, after which Poll is not called again.
type Source interface {
	Poll(ctx context.Context, cfgs []Config) []Sample
	Close() error
}

// Config is one trigger's validated configuration, as filled by Decode from its `param` tags.
type Config interface {
	// Connection identifies the broker connection the trigger is read over: configs with
	// equal Connection strings share one Source. It must never hold a secret in clear.
	Connection() string
	// Target is the value per replica that the HPA aims at (lagThreshold, value, …).
	Target() float64
	// Validate reports problems that involve several parameters. It changes nothing. It
	// also runs when some parameters were refused or are missing, which Decode leaves as if
	// not set (zero, or their default), so it must not assume that required ones are set.
	Validate() []FieldError
}

// Compiler is implemented by a Config that prepares ready-to-use values (a rendered URL, a
// request) from its parameters. Registry.Parse calls Compile once, after Validate reported
// nothing; the Config is never changed after that, so two configs parsed from the same
// parameters stay equal however they are used.
type Compiler interface {
	Compile() []FieldError
}

// Sample is the outcome of reading one trigger once.
type Sample struct {
	// Value is the scaling metric: the HPA divides it by the trigger's Target.
	Value float64
	// Active reports whether the trigger is above its activation threshold.
	Active bool
	// Err is set when the value could not be read; Value and Active then mean nothing.
	Err error
	// Warnings are conditions worth telling the user about while the value is still usable.
	Warnings []Warning
	// Counters are set, when Err is not, for a trigger that scales on backlog age (see
	// BacklogAgeOf), and only then: other triggers pay no request and no allocation for them.
	Counters *Counters
}

// Counters are the message counts of a trigger's scope (its partitions, queues or queue) at
// one poll, from which backlog-age scaling derives the rates at which messages arrive and are
// consumed.
//
// Produced and Consumed are monotonic: they only go down when the scope is reset (a topic
// deleted and created again, a queue deleted and declared again, a broker restarted), which
// the caller must detect and not read as a rate. What each counts is the source's own figure:
//
//   - kafka: Produced sums the end offsets of the partitions in scope. Consumed is Produced −
//     Backlog: per partition, the group's committed offset clamped to the start and end
//     offsets (messages removed by retention count as consumed); a partition without a
//     commit counts as consumed up to its start offset under offsetResetPolicy earliest, up
//     to one message below its end under latest (the one message Lag counts so that a new
//     group activates), up to its end with scaleToZeroOnInvalidOffset. Read from the
//     offsets the lag is read from, no request of their own: end and committed offsets as
//     of the poll, start offsets (which only retention moves) up to 5 s old.
//   - rabbitmq (management API only): Produced sums message_stats.publish of the queues
//     selected, Consumed their message_stats.ack + deliver_no_ack + get_no_ack: messages
//     acknowledged, or delivered or fetched without acknowledgement. Messages that reach a
//     queue by dead-lettering are not publishes, and messages rejected, expired or purged
//     are not consumed. RabbitMQ samples these every 5 s (collect_statistics_interval), so
//     they may be 5–10 s older than Backlog, which is read fresh; a queue that is new, or
//     has had nothing published or delivered, counts 0.
//   - activemq: Produced is the queue's EnqueueCount, Consumed its DequeueCount, read with
//     QueueSize in the same request and exact at the poll. ActiveMQ keeps them in memory:
//     they start again from 0 when the broker restarts, while persistent messages stay.
//
// Backlog is the messages waiting now: the trigger's total lag (persistent lag included), the
// queues' messages (ready and unacknowledged, whatever excludeUnacknowledged says), or
// QueueSize. It is not a counter.
//
// A count the broker did not give is an error of the Sample, never 0: zero needs evidence.
// Every figure is a finite number of at least 0 (Pool turns any other into an error).
//
// Consumers, when above 0, is the most replicas that can consume at once (a Kafka trigger's
// partitions in scope, unless allowIdleConsumers): replicas beyond it are idle, so they count
// neither towards what one replica consumes nor as capacity. 0 means no such limit.
type Counters struct {
	Backlog   float64
	Produced  float64
	Consumed  float64
	Consumers int
}

// Warning is a condition found while reading a value that did not stop it being read.
type Warning struct {
	Reason  string // CamelCase, used as the Kubernetes Event reason
	Message string
}

// Kind is one trigger type.
type Kind struct {
	// NewConfig returns a pointer to a zero config struct whose fields carry `param` tags.
	// It embeds BacklogAge when the type supports backlog-age scaling, as every built-in
	// type does.
	NewConfig func() Config
	// Open connects to the broker named by cfg. Every config with the same Connection is
	// then polled through the returned Source.
	Open func(cfg Config) (Source, error)
	// Thresholds names the parameters that set the trigger's threshold (lagThreshold, …),
	// which targetBacklogAge replaces: Parse refuses a trigger that sets both.
	Thresholds []string
}

// Registry maps a trigger type name, as written in `type:`, to its Kind.
type Registry map[string]Kind

// Params is a trigger as the user wrote it, with the data of its authentication Secret.
type Params struct {
	Type     string
	Name     string
	Metadata map[string]string
	// Secret holds the parameters that authenticationRef supplies (the keys of its Secret, and
	// its secretTargetRef mappings); nil when there is none.
	Secret map[string]string
}

// Parse decodes and validates p. Every problem is reported at once, in a *ConfigError:
// Validate runs even when some parameters were refused (see validateProblems).
func (r Registry) Parse(p Params) (Trigger, error) {
	kind, ok := r[p.Type]
	if !ok {
		return Trigger{}, &ConfigError{Trigger: p.Name, Problems: []FieldError{{
			Param:   "type",
			Problem: fmt.Sprintf("unknown trigger type %q (known: %s)", p.Type, strings.Join(r.Types(), ", ")),
		}}}
	}
	cfg := kind.NewConfig()
	problems := Decode(cfg, p.Metadata, p.Secret)
	problems = append(problems, kind.backlogAgeProblems(cfg, p)...)
	problems = append(problems, validateProblems(cfg, problems)...)
	if c, ok := cfg.(Compiler); ok && len(problems) == 0 {
		problems = c.Compile()
	}
	if len(problems) > 0 {
		return Trigger{}, &ConfigError{Trigger: p.Name, Problems: problems}
	}
	return newTrigger(p, cfg), nil
}

// validateProblems runs cfg's Validate on what Decode could read, decoded being Decode's
// problems: a refused parameter reads as not set. Validate's problems with a parameter that
// Decode refused are repeats, and dropped. A refused choice (an enum parameter: sasl,
// protocol, mode, …) reads as its default, and what Validate finds missing for the default
// may be what the intended choice does not need: those problems wait until it is fixed.
func validateProblems(cfg Config, decoded []FieldError) []FieldError {
	more := cfg.Validate()
	if len(decoded) == 0 {
		return more
	}
	refused := make(map[string]bool, len(decoded))
	for _, d := range decoded {
		refused[d.Param] = true
	}
	choiceRefused := false
	for _, s := range paramSpecs(reflect.TypeOf(cfg).Elem()) {
		choiceRefused = choiceRefused || (len(s.enum) > 0 && refused[s.name])
	}
	var out []FieldError
	for _, m := range more {
		if !refused[m.Param] && (!m.Missing || !choiceRefused) {
			out = append(out, m)
		}
	}
	return out
}

// Params returns the parameter names that a trigger of type typ reads, or nil for a type
// that is not registered.
func (r Registry) Params(typ string) map[string]bool {
	kind, ok := r[typ]
	if !ok {
		return nil
	}
	names := Names(kind.NewConfig())
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out
}

// Types returns the registered trigger types, sorted.
func (r Registry) Types() []string {
	types := make([]string, 0, len(r))
	for t := range r {
		types = append(types, t)
	}
	sort.Strings(types)
	return types
}

// FieldError is a problem with one trigger parameter.
type FieldError struct {
	Param   string
	Problem string
	// Missing marks a parameter that is absent: a Secret that the reader cannot see (an
	// offline check) may still supply it.
	Missing bool
}

func (e FieldError) Error() string { return e.Param + ": " + e.Problem }

// Problems collects the FieldErrors that a Config's Validate reports.
type Problems []FieldError

// Add records a problem with param.
func (p *Problems) Add(param, format string, args ...any) {
	*p = append(*p, FieldError{Param: param, Problem: fmt.Sprintf(format, args...)})
}

// Missing records a parameter that must be set and is not: a Secret the reader cannot see
// may still supply it.
func (p *Problems) Missing(param, format string, args ...any) {
	*p = append(*p, FieldError{Param: param, Problem: fmt.Sprintf(format, args...), Missing: true})
}

// Login records a username without a password, or a password without a username: a broker
// may ask for no login, but never for half of one.
func (p *Problems) Login(username, password string) {
	switch {
	case username != "" && password == "":
		p.Missing("password", "is required when username is set (set it in the Secret)")
	case password != "" && username == "":
		p.Missing("username", "is required when password is set")
	}
}

// ConfigError reports every problem found in one trigger's configuration. It is a user
// error: polling again cannot fix it, only editing the trigger can.
type ConfigError struct {
	Trigger  string
	Problems []FieldError
}

func (e *ConfigError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return fmt.Sprintf("trigger %q: %s", e.Trigger, strings.Join(parts, "; "))
}
