package activemqtest

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// Send puts n persistent messages on queue over STOMP, creating the queue if need be, and
// returns once the broker has stored them all.
func (b *Broker) Send(ctx context.Context, queue string, n int) error {
	c, err := b.dial(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = c.Disconnect() }()
	for i := range n {
		opts := []func(*frame.Frame) error{stomp.SendOpt.Header("persistent", "true")}
		if i == n-1 {
			// Frames are handled in order: the last one's receipt vouches for them all.
			opts = append(opts, stomp.SendOpt.Receipt)
		}
		if err := c.Send("/queue/"+queue, "text/plain", fmt.Appendf(nil, "message %d", i), opts...); err != nil {
			return fmt.Errorf("sending to %s: %w", queue, err)
		}
	}
	return nil
}

// Consume takes m messages off queue over STOMP and acknowledges them, one at a time so
// that the broker dispatches no more than it is asked for, and returns once the broker has
// processed the acknowledgements. It fails when queue does not yield m messages within ctx.
func (b *Broker) Consume(ctx context.Context, queue string, m int) error {
	c, err := b.dial(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = c.MustDisconnect() }() // after an error only: Disconnect below on success
	sub, err := c.Subscribe("/queue/"+queue, stomp.AckClientIndividual, stomp.SubscribeOpt.Header("activemq.prefetchSize", "1"))
	if err != nil {
		return fmt.Errorf("subscribing to %s: %w", queue, err)
	}
	for i := range m {
		select {
		case msg, ok := <-sub.C:
			if !ok {
				return fmt.Errorf("consuming from %s: the subscription ended", queue)
			}
			if msg.Err != nil {
				return fmt.Errorf("consuming from %s: %w", queue, msg.Err)
			}
			if err := c.Ack(msg); err != nil {
				return fmt.Errorf("acknowledging a message of %s: %w", queue, err)
			}
		case <-ctx.Done():
			return fmt.Errorf("consuming from %s: got %d of %d messages: %w", queue, i, m, ctx.Err())
		}
	}
	// DISCONNECT's receipt comes after the broker has handled every ACK sent before it; the
	// message dispatched but not acknowledged goes back to the queue.
	if err := c.Disconnect(); err != nil {
		return fmt.Errorf("disconnecting after consuming from %s: %w", queue, err)
	}
	return nil
}

// dial opens a STOMP connection as User, bounded by ctx.
func (b *Broker) dial(ctx context.Context) (*stomp.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", b.StompAddr)
	if err != nil {
		return nil, fmt.Errorf("STOMP at %s: %w", b.StompAddr, err)
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	c, err := stomp.ConnectWithContext(ctx, nc,
		stomp.ConnOpt.Login(b.User, b.Password),
		stomp.ConnOpt.Logger(quiet{}),
		stomp.ConnOpt.MsgSendTimeout(timeout),
		stomp.ConnOpt.RcvReceiptTimeout(timeout),
		stomp.ConnOpt.DisconnectReceiptTimeout(timeout))
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("STOMP at %s: %w", b.StompAddr, err)
	}
	return c, nil
}

// quiet drops go-stomp's log lines: its errors reach the caller anyway.
type quiet struct{}

func (quiet) Debugf(string, ...any)   {}
func (quiet) Infof(string, ...any)    {}
func (quiet) Warningf(string, ...any) {}
func (quiet) Errorf(string, ...any)   {}
func (quiet) Debug(string)            {}
func (quiet) Info(string)             {}
func (quiet) Warning(string)          {}
func (quiet) Error(string)            {}
