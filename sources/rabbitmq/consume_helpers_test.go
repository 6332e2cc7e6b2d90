package rabbitmq_test

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// consume takes n messages of queue through a consumer, acknowledging each (RabbitMQ
// counts them in message_stats.ack) when ack is set. Without ack the consumer takes messages
// in auto-ack mode (deliver_no_ack), in which the broker sends it all it has whatever the
// prefetch: the queue must then hold exactly n.
//
// The channel stays open until the test ends: the management API counts a channel's
// deliveries and acknowledgements when it collects the channel's statistics, every few
// seconds, and a channel closed before that may never be counted. The consumer is cancelled
// before the last acknowledgement, so that the prefetch of 1 lets no further message out.
func (p *publisher) consume(t testing.TB, queue string, n int, ack bool) {
	t.Helper()
	ch := p.statsChannel(t)
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	const tag = "counted"
	deliveries, err := ch.Consume(queue, tag, !ack, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		select {
		case d := <-deliveries:
			if i == n-1 {
				if err := ch.Cancel(tag, false); err != nil {
					t.Fatal(err)
				}
			}
			if ack {
				if err := d.Ack(false); err != nil {
					t.Fatal(err)
				}
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no delivery from %s", queue)
		}
	}
}

// statsChannel opens a channel that stays open until the test ends (see consume).
func (p *publisher) statsChannel(t testing.TB) *amqp.Channel {
	t.Helper()
	ch, err := p.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	return ch
}

// get takes n messages of queue by basic.get, acknowledging each when ack is set (counted in
// ack) or not (get_no_ack), on a channel that stays open until the test ends (see consume).
func (p *publisher) get(t testing.TB, queue string, n int, ack bool) {
	t.Helper()
	ch := p.statsChannel(t)
	for range n {
		d, ok, err := ch.Get(queue, !ack)
		if err != nil || !ok {
			t.Fatalf("get from %s: %v, %v", queue, ok, err)
		}
		if ack {
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		}
	}
}
