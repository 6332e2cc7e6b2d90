package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
)

// ExplainDial says why a connection to where (a broker's URL or address) could not be made
// or kept, for the failures users meet with any broker: nothing listening, a name that does
// not resolve, and a broker that did not answer in time. product names the broker for the
// hint ("is RabbitMQ running…"). Other errors are returned with where in front.
func ExplainDial(err error, where, product string) error {
	var (
		dnsErr *net.DNSError
		opErr  *net.OpError
		netErr net.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("%s did not answer in time (timeout): %w", where, err)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("cannot resolve the host of %s: %w", where, err)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Errorf("cannot connect to %s: is %s running and the port right? %w", where, product, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// Withheld stands for an error whose text may quote what a server sent: it prints a fixed
// text of ours, and keeps the error for errors.Is and errors.As.
type Withheld struct {
	Text string
	Err  error
}

func (w *Withheld) Error() string { return w.Text }
func (w *Withheld) Unwrap() error { return w.Err }

// OwnWords returns err when its text is known to be ours or the system's: timeouts and
// cancellations, network errors (net.Error: connection refused, DNS, a TLS alert) and an
// answer cut short. Any other error is withheld behind text: a client library may quote
// what the server sent (net/http quotes the first line of an answer that is not HTTP), and
// the server is whatever answers at the address a tenant named.
func OwnWords(err error, text string) error {
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr) {
		return err
	}
	return &Withheld{Text: text, Err: err}
}
