package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"slices"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/qscale/qscale/sources"
)

// ReasonNoCommittedOffsets is the Warning reason for a group without committed offsets on a
// topic in scope: often a typo in consumerGroup.
const ReasonNoCommittedOffsets = "NoCommittedOffsets"

// scoped is one trigger's view of a poll: the offsets of the partitions in its scope.
type scoped struct {
	parts     []Partition
	needStart []string // topics with a partition whose start offset can change the result
	warnings  []sources.Warning
	err       error
	cfg       *Config
}

// scope gathers the partitions that c reads. Topics are c.Topics or, when none are named,
// those the group has committed offsets on; partitionLimitation narrows the partitions.
func (s *Source) scope(c *Config, snap *snapshot) *scoped {
	sc := &scoped{cfg: c}
	gr, ok := snap.commits[c.ConsumerGroup]
	switch {
	case !ok:
		sc.err = fmt.Errorf("group %q: the broker sent no committed offsets", c.ConsumerGroup)
		return sc
	case errors.Is(gr.err, kerr.GroupIDNotFound):
		// Real Kafka answers an unknown group with no offsets; some brokers say "not found".
		// Either way it is a group without commits, not a failure.
	case gr.err != nil:
		sc.err = fmt.Errorf("fetching committed offsets of group %q: %w", c.ConsumerGroup, gr.err)
		return sc
	}
	topics := c.Topics
	if len(topics) == 0 {
		if topics = committedTopics(gr); len(topics) == 0 {
			sc.warnings = append(sc.warnings, s.noCommits(c, "any topic"))
			return sc
		}
	}
	for _, t := range topics {
		if sc.err = s.scopeTopic(snap, gr, t, sc); sc.err != nil {
			return sc
		}
	}
	if len(sc.parts) == 0 && len(c.PartitionLimitation) > 0 {
		sc.err = fmt.Errorf("partitionLimitation matches no partition of topic %v", topics)
	}
	return sc
}

func (s *Source) scopeTopic(snap *snapshot, gr commits, t string, sc *scoped) error {
	c := sc.cfg
	if err := snap.ends.errs[t]; err != nil {
		if errors.Is(err, errNoTopic) {
			return fmt.Errorf("topic %q does not exist", t)
		}
		return fmt.Errorf("topic %q: %w", t, err)
	}
	ends, ok := snap.ends.byTopic[t]
	if !ok {
		return fmt.Errorf("topic %q: the broker sent no end offsets", t)
	}
	if err := gr.errs[t]; err != nil {
		return fmt.Errorf("committed offsets of group %q on topic %q: %w", c.ConsumerGroup, t, err)
	}
	if snap.starts.outdated(t, ends) {
		// The topic was deleted and created again since its start offsets were listed: list
		// them again in this poll rather than fail it on a start above the end.
		delete(snap.starts.byTopic, t)
	}
	committed, needStart := false, false
	sc.parts = slices.Grow(sc.parts, len(ends))
	for id, end := range ends { // every partition of the topic, each with its end offset
		p := int32(id)
		if !c.PartitionLimitation.Contains(p) {
			continue
		}
		part := Partition{Topic: t, ID: p, Start: snap.starts.offset(t, p), End: end, Committed: gr.offset(t, p), Previous: NoOffset}
		committed = committed || part.Committed != NoOffset
		if prev, ok := s.prev[groupPartition{c.ConsumerGroup, t, p}]; ok {
			part.Previous = prev
		}
		if c.needsStart(part) {
			needStart = true
			if err := snap.starts.errs[t]; err != nil && part.Start == NoOffset {
				return fmt.Errorf("topic %q: %w", t, err)
			}
		}
		sc.parts = append(sc.parts, part)
	}
	if !committed {
		sc.warnings = append(sc.warnings, s.noCommits(c, fmt.Sprintf("topic %q", t)))
	}
	if needStart {
		sc.needStart = append(sc.needStart, t)
	}
	return nil
}

// fillStarts completes the scope with start offsets listed after it was gathered.
func (sc *scoped) fillStarts(l *listing) {
	if sc.err != nil {
		return
	}
	for i := range sc.parts {
		p := &sc.parts[i]
		if p.Start != NoOffset || !sc.cfg.needsStart(*p) || !l.has(p.Topic) {
			continue
		}
		if err := l.errs[p.Topic]; err != nil {
			sc.err = fmt.Errorf("topic %q: %w", p.Topic, err)
			return
		}
		p.Start = l.offset(p.Topic, p.ID)
	}
}

func (s *Source) noCommits(c *Config, where string) sources.Warning {
	return sources.Warning{
		Reason: ReasonNoCommittedOffsets,
		Message: fmt.Sprintf("consumer group %q has no committed offsets on %s in kafka cluster %s: check consumerGroup; "+
			"until it commits, partitions count as offsetResetPolicy %s says", c.ConsumerGroup, where, c.cluster(), c.OffsetResetPolicy),
	}
}

// explain names the cluster in err and says what the usual cause is where the raw error
// would mislead: a broker that rejects SASL credentials often just closes the connection.
func (s *Source) explain(err error) error {
	c := s.cfg
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		if dial := s.dials.get(); dial != nil {
			err = fmt.Errorf("%w (%w)", err, dial)
		}
	}
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed),
		c.mechanism() != "none" && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		return fmt.Errorf("kafka cluster %s: SASL %s authentication as %q failed or the broker closed the connection "+
			"(check username, password and sasl): %w", c.cluster(), c.mechanism(), c.Username, err)
	case errors.As(err, &unknownAuthority), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return fmt.Errorf("kafka cluster %s: TLS: the broker's certificate is not trusted (check ca, or unsafeSsl): %w", c.cluster(), err)
	case errors.As(err, &header):
		return fmt.Errorf("kafka cluster %s: TLS: the broker does not speak TLS on this port (check tls): %w", c.cluster(), err)
	case !c.tlsEnabled() && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		return fmt.Errorf("kafka cluster %s: the broker closed the connection (does it expect tls?): %w", c.cluster(), err)
	}
	return fmt.Errorf("kafka cluster %s: %w", c.cluster(), err)
}
