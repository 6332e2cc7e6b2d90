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
// untrusted certificate, and a broker that did not answer in time.
func explainDial(err error, where string) error {
	var (
		recordErr tls.RecordHeaderError
		verifyErr *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
	)
	switch {
	case errors.As(err, &recordErr), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("TLS handshake with %s failed: the port does not speak TLS (use amqp:// or http://, or the TLS port): %w", where, err)
	case errors.As(err, &verifyErr), errors.As(err, &unknownCA), errors.As(err, &hostErr):
		return fmt.Errorf("TLS: the certificate of %s is not trusted: set ca to the CA that signed it, or unsafeSsl to skip verification: %w", where, err)
	case strings.Contains(err.Error(), "remote error: tls:"):
		return fmt.Errorf("TLS: %s refused the handshake: it wants a client certificate it trusts (set cert and key): %w", where, err)
	}
	return sources.ExplainDial(err, where, "RabbitMQ")
}

// explainAMQP says what an AMQP failure means. The broker's own reason is kept: it names the
// vhost, queue or user concerned.
func explainAMQP(err error, where, user string) error {
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		return explainDial(err, where)
	}
	switch {
	case ae == amqp.ErrCredentials || (ae.Code == amqp.AccessRefused && !ae.Server):
		return fmt.Errorf("RabbitMQ at %s refused the login of user %q: wrong username or password: %w", where, user, err)
	case ae.Code == amqp.NotAllowed:
		return fmt.Errorf("RabbitMQ at %s refused the vhost (it does not exist, or user %q has no permission on it): %w", where, user, err)
	case ae.Code == amqp.AccessRefused:
		return fmt.Errorf("RabbitMQ at %s refused access for user %q (check its permissions): %w", where, user, err)
	case ae == amqp.ErrClosed || ae.Code == amqp.ConnectionForced:
		return fmt.Errorf("connection to %s was closed (broker restart or connection closed by an operator); the next poll reconnects: %w", where, err)
	case !ae.Server:
		return explainDial(err, where) // a network or TLS failure that amqp091 wrapped
	}
	return fmt.Errorf("RabbitMQ at %s: %w", where, err)
}
