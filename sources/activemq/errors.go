package activemq

import (
	"crypto/tls"
	"errors"
	"fmt"

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

// ownWords returns err when its text is the system's, else our fixed text: see
// sources.OwnWords.
func ownWords(err error) error {
	return sources.OwnWords(err, "the answer does not follow the protocol (is this the right port?)")
}
