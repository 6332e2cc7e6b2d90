package rabbitmq

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/qscale/qscale/sources"
)

// ReasonNoMatchingQueues is the Warning reason when a useRegex trigger's pattern matches no
// queue: the value is then 0, which is right for a pattern that matches queues that come and
// go, and a silent mistake for a typo.
const ReasonNoMatchingQueues = "NoMatchingQueues"

// queueStats is what one poll read about one queue.
type queueStats struct {
	Name string
	// Messages counts ready and unacknowledged messages; Ready only those not yet delivered.
	// A passive declare over AMQP sees ready messages only, so both hold that figure there.
	Messages, Ready float64
	// PublishRate is messages/s published to the queue, as the management API last sampled it.
	PublishRate float64
	// Published and Consumed count the messages ever published to the queue and consumed
	// from it, as the management API last sampled them (see messageStats); counted reports
	// that they were read, which only the statistics listing with counts does.
	Published, Consumed float64
	counted             bool
	// unreadable is the state of a queue the management API listed without counts.
	unreadable string
}

// aggregate combines the figures of the queues a trigger reads: sum, max or avg. No queue at
// all gives 0, as in KEDA. A sum (for sum or avg) that overflows to +Inf is not a figure: ok
// is false, and the trigger's sample an error. The listing bounds every figure (maxCount) far
// below what could overflow, so this is a second line; a third is sources.Pool, which turns
// a value that is not finite into an error.
func aggregate(values []float64, operation string) (v float64, ok bool) {
	if len(values) == 0 {
		return 0, true
	}
	var sum, highest float64
	for i, v := range values {
		sum += v
		if i == 0 || v > highest {
			highest = v
		}
	}
	switch operation {
	case "max":
		return highest, true
	case "avg":
		v = sum / float64(len(values))
	default:
		v = sum
	}
	return v, !math.IsInf(sum, 0) && !math.IsNaN(sum)
}

// measure turns the queues a trigger selected into its sample. QueueLength reports the
// aggregated depth; MessageRate the aggregated publish rate, and is active while either the
// rate or the depth is above activationValue, as in KEDA, so that a backlog nobody publishes
// to still keeps a consumer running. A backlog-age trigger's sample also carries the counts
// of its queues.
func (c *Config) measure(qs []queueStats) sources.Sample {
	s := c.value(qs)
	if s.Err != nil || !c.ScalesOnBacklogAge() {
		return s
	}
	counts, err := count(qs)
	if err != nil {
		return sources.Sample{Err: err}
	}
	s.Counters = &counts
	return s
}

// count sums the counts of the queues a backlog-age trigger selected, whatever its
// operation: its backlog is all their messages, ready or not (excludeUnacknowledged changes
// the value alone), because Consumed counts a message when it is acknowledged. A queue whose
// counts were not read is an error, never 0.
func count(qs []queueStats) (sources.Counters, error) {
	var c sources.Counters
	for _, q := range qs {
		if !q.counted {
			return sources.Counters{}, errors.New("a queue read has no statistics listed (created or deleted between two requests?)")
		}
		c.Backlog += q.Messages
		c.Produced += q.Published
		c.Consumed += q.Consumed
	}
	// The listing bounds every count (maxCount), far below what could overflow: a second line.
	if math.IsInf(c.Backlog+c.Produced+c.Consumed, 0) {
		return sources.Counters{}, fmt.Errorf("the sum of the message counts of the %d queues read overflows", len(qs))
	}
	return c, nil
}

// value is the trigger's scaling metric: see measure.
func (c *Config) value(qs []queueStats) sources.Sample {
	depths := make([]float64, len(qs))
	rates := make([]float64, len(qs))
	for i, q := range qs {
		depths[i] = q.Messages
		if c.ExcludeUnacknowledged {
			depths[i] = q.Ready
		}
		rates[i] = q.PublishRate
	}
	depth, ok := aggregate(depths, c.Operation)
	if !ok {
		return sources.Sample{Err: fmt.Errorf("the %s of the depths of the %d queues read overflows", c.Operation, len(qs))}
	}
	if c.mode() == ModeMessageRate {
		rate, ok := aggregate(rates, c.Operation)
		if !ok {
			return sources.Sample{Err: fmt.Errorf("the %s of the publish rates of the %d queues read overflows", c.Operation, len(qs))}
		}
		return sources.Sample{Value: rate, Active: rate > c.ActivationValue || depth > c.ActivationValue}
	}
	return sources.Sample{Value: depth, Active: depth > c.ActivationValue}
}

// queueMatcher picks a trigger's queues by name: one exact name, or a regex (useRegex).
type queueMatcher struct {
	name    string         // the exact name, without useRegex
	pattern string         // the pattern as written, with useRegex
	re      *regexp.Regexp // pattern, compiled case-insensitive like RabbitMQ's own filter
}

func (m queueMatcher) matches(queue string) bool {
	if m.re != nil {
		return m.re.MatchString(queue)
	}
	return queue == m.name
}

// filterTerm is the matcher as part of the management API's name filter: a PCRE that
// matches at least the queues the matcher does.
func (m queueMatcher) filterTerm() string {
	if m.re != nil {
		return "(?:" + m.pattern + ")"
	}
	return "^" + regexp.QuoteMeta(m.name) + "$"
}

// maxFilterTerms and maxFilterLen bound the name filter sent to the management API. The
// broker tries every term on every queue of the vhost, after counting them all anyway: on
// 100 queues, 1 term saves a fifth of the listing's time, 30 terms cost a fifth more, 100
// terms double it. Its HTTP server also refuses request lines above 8,000 bytes.
const (
	maxFilterTerms = 16
	maxFilterLen   = 4000
)

// nameFilter returns one regex matching every queue some matcher selects, for the API to
// list only those, or "" (list every queue of the vhost) when that would cost more than it
// saves. The API's match is a pre-filter only: each trigger's queues are picked again by its
// matcher.
func nameFilter(ms []queueMatcher) string {
	seen := map[string]bool{}
	var terms []string
	for _, m := range ms {
		t := m.filterTerm()
		if !seen[t] {
			seen[t] = true
			terms = append(terms, t)
		}
	}
	f := strings.Join(terms, "|")
	if len(terms) > maxFilterTerms || len(f) > maxFilterLen {
		return ""
	}
	return f
}

// selectQueues picks the queues a matcher selects from a vhost's listing. An exact name
// that is not listed is an error: the queue does not exist.
func selectQueues(m queueMatcher, listed map[string]queueStats) ([]queueStats, error) {
	if m.re == nil {
		q, ok := listed[m.name]
		if !ok {
			return nil, errNoQueue
		}
		return []queueStats{q}, nil
	}
	var qs []queueStats
	for name, q := range listed {
		if m.matches(name) {
			qs = append(qs, q)
		}
	}
	return qs, nil
}

// noMatchWarning is the warning for a regex that selected nothing.
func noMatchWarning(pattern, vhost string) sources.Warning {
	return sources.Warning{
		Reason:  ReasonNoMatchingQueues,
		Message: fmt.Sprintf("queueName %q matches no queue in vhost %q; the value is 0", pattern, vhost),
	}
}
