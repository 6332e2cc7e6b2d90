package rabbitmq

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/qscale/qscale/sources"
)

// errNoQueue marks a queue that the broker does not have; callers say which and where.
var errNoQueue = errors.New("queue does not exist")

func queueMissing(queue, vhost, where string) error {
	return fmt.Errorf("queue %q does not exist in vhost %q on %s: %w", queue, vhost, where, errNoQueue)
}

// explainDial says why a connection to where could not be made or kept, for the failures
// users meet: nothing listening, a name that does not resolve, a TLS mismatch or an
// untrusted certificate, and a broker that did not answer in time. It never quotes what the
// server sent: see withhold.
func explainDial(err error, where string) error {
	var (
		recordErr tls.RecordHeaderError
		verifyErr *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &recordErr), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("TLS handshake with %s failed: the port does not speak TLS (use amqp:// or http://, or the TLS port): %w", where, withhold(err))
	case errors.As(err, &verifyErr), errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalid):
		return fmt.Errorf("TLS: the certificate of %s is not trusted: set ca to the CA that signed it, or unsafeSsl to skip verification: %w", where, untrusted(err))
	case strings.Contains(err.Error(), "remote error: tls:"):
		return fmt.Errorf("TLS: %s refused the handshake: it wants a client certificate it trusts (set cert and key): %w", where, withhold(err))
	}
	return sources.ExplainDial(withhold(err), where, "RabbitMQ")
}

// withhold returns err when its text is known to be ours or the system's: timeouts and
// network errors (net.Error: connection refused, a TLS alert, DNS), an answer cut short, and
// TLS's and amqp091's own failures. Any other error is withheld: net/http, for one, quotes
// the first line of an answer that is not HTTP, and that line may come from whatever
// answers at the URL the tenant named.
func withhold(err error) error {
	var (
		recordErr tls.RecordHeaderError
		ae        *amqp.Error
	)
	switch {
	case errors.As(err, &recordErr):
		return err
	case errors.As(err, &ae):
		return amqpReply{ae}
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return err
	}
	return sources.OwnWords(err, "the answer does not follow the protocol (is this the broker's port?)")
}

// untrusted says why a certificate was not trusted, without the names in it: they are the
// server's words.
func untrusted(err error) error {
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	text := "x509: the certificate could not be verified"
	switch {
	case errors.As(err, &hostErr):
		text = "x509: the certificate is not valid for the host dialed"
	case errors.As(err, &unknownCA):
		text = "x509: the certificate is signed by an unknown authority"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		text = "x509: the certificate has expired or is not yet valid"
	}
	return &sources.Withheld{Text: text, Err: err}
}

// explainAMQP says what an AMQP failure means, in words of ours and the reply code: the
// broker's reason is free text, which qscale does not repeat (see amqpReply).
func explainAMQP(err error, where, user string) error {
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		return explainDial(err, where)
	}
	reply := amqpReply{ae}
	switch {
	case ae == amqp.ErrCredentials || (ae.Code == amqp.AccessRefused && !ae.Server):
		return fmt.Errorf("RabbitMQ at %s refused the login of user %q: wrong username or password: %w", where, user, reply)
	case ae.Code == amqp.NotAllowed:
		return fmt.Errorf("RabbitMQ at %s refused the vhost (it does not exist, or user %q has no permission on it): %w", where, user, reply)
	case ae.Code == amqp.AccessRefused:
		return fmt.Errorf("RabbitMQ at %s refused access for user %q (check its permissions): %w", where, user, reply)
	case ae == amqp.ErrClosed || ae.Code == amqp.ConnectionForced:
		return fmt.Errorf("connection to %s was closed (broker restart or connection closed by an operator); the next poll reconnects: %w", where, reply)
	case !ae.Server:
		return explainDial(err, where) // a network or TLS failure that amqp091 wrapped
	}
	return fmt.Errorf("RabbitMQ at %s: %w", where, reply)
}

// replyCodes are AMQP 0-9-1's reply codes, each with its name in the specification and what
// it means here.
var replyCodes = map[int][2]string{
	amqp.ContentTooLarge:    {"CONTENT_TOO_LARGE", "a message was too large"},
	amqp.NoRoute:            {"NO_ROUTE", "a message could not be routed"},
	amqp.NoConsumers:        {"NO_CONSUMERS", "no consumer could take a message"},
	amqp.ConnectionForced:   {"CONNECTION_FORCED", "an operator or a broker shutdown closed the connection"},
	amqp.InvalidPath:        {"INVALID_PATH", "the vhost name is not valid"},
	amqp.AccessRefused:      {"ACCESS_REFUSED", "access refused"},
	amqp.NotFound:           {"NOT_FOUND", "no such queue"},
	amqp.ResourceLocked:     {"RESOURCE_LOCKED", "the queue is exclusive to another connection"},
	amqp.PreconditionFailed: {"PRECONDITION_FAILED", "a precondition failed"},
	amqp.FrameError:         {"FRAME_ERROR", "a frame was malformed"},
	amqp.SyntaxError:        {"SYNTAX_ERROR", "a frame held a field that is not valid"},
	amqp.CommandInvalid:     {"COMMAND_INVALID", "a command was not valid at that point"},
	amqp.ChannelError:       {"CHANNEL_ERROR", "the channel is not open"},
	amqp.UnexpectedFrame:    {"UNEXPECTED_FRAME", "a frame came that was not expected"},
	amqp.ResourceError:      {"RESOURCE_ERROR", "the broker lacks a resource (memory, disk or channels)"},
	amqp.NotAllowed:         {"NOT_ALLOWED", "not allowed"},
	amqp.NotImplemented:     {"NOT_IMPLEMENTED", "the broker does not implement the request"},
	amqp.InternalError:      {"INTERNAL_ERROR", "the broker failed internally"},
}

// amqpReply prints an amqp.Error as its reply code, and keeps it for errors.Is and errors.As.
// Of a reply the broker sent (Server) only the code is shown, with our description: its
// reason is free text from whatever answers at the host's address. amqp091's own errors
// (not Server) keep their reason, which is a constant of the library or the text of a local
// read or write error.
type amqpReply struct{ e *amqp.Error }

func (r amqpReply) Error() string {
	code, known := replyCodes[r.e.Code]
	switch {
	case !r.e.Server:
		return fmt.Sprintf("AMQP client error %d: %s", r.e.Code, r.e.Reason)
	case !known:
		return fmt.Sprintf("AMQP reply %d (not a reply code of AMQP 0-9-1)", r.e.Code)
	}
	return fmt.Sprintf("AMQP reply %d %s (%s)", r.e.Code, code[0], code[1])
}

func (r amqpReply) Unwrap() error { return r.e }
