package sources

import (
	"context"
	"errors"
	"fmt"
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
