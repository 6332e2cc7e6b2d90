package activemq

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/qscale/qscale/sources"
)

// errNotFound marks a queue or broker that the broker does not have; callers say which.
var errNotFound = errors.New("not found")

// errPostRefused marks a bulk request that the Jolokia agent refused for its HTTP method,
// POST: the reads are then made by GET. It never reaches a Sample.
var errPostRefused = errors.New("the Jolokia agent does not allow POST")

func queueMissing(queue, broker, where string) error {
	if broker == "" {
		return fmt.Errorf("queue %q %w on the broker at %s (check destinationName; ActiveMQ creates a queue when it is first used)", queue, errNotFound, where)
	}
	return fmt.Errorf("queue %q %w on broker %q at %s (check destinationName; ActiveMQ creates a queue when it is first used)", queue, errNotFound, broker, where)
}

func brokerMissing(broker, where string) error {
	return fmt.Errorf("broker %q %w at %s (check brokerName: it is the brokerName of the broker's activemq.xml)", broker, errNotFound, where)
}

// explainDial says why a connection to where could not be made or kept, without quoting
// anything the server sent: see ownWords.
func explainDial(err error, where string) error {
	var (
		recordErr tls.RecordHeaderError
		verifyErr *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &recordErr):
		return fmt.Errorf("TLS handshake with %s failed: the port does not speak TLS (use http:// in restAPITemplate, or the TLS port)", where)
	case errors.As(err, &verifyErr):
		// The certificate's names are the server's words.
		return fmt.Errorf("TLS: %s presented a certificate that the system's CAs do not vouch for (or not for this host)", where)
	}
	return sources.ExplainDial(ownWords(err), where, "ActiveMQ")
}

// ownWords returns err when its text is known to be ours or the system's: timeouts, network
// errors (net.Error: connection refused, DNS, a TLS alert) and an answer cut short. Any
// other error is replaced by one that prints a fixed text and unwraps to err: net/http, for
// one, quotes the first line of an answer that is not HTTP, and go-stomp the words of the
// broker's ERROR frames.
func ownWords(err error) error {
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr) {
		return err
	}
	return notOurWords{err}
}

// notOurWords stands for an error whose text may quote what a server sent.
type notOurWords struct{ err error }

func (notOurWords) Error() string {
	return "the answer does not follow the protocol (is this the right port?)"
}
func (w notOurWords) Unwrap() error { return w.err }
