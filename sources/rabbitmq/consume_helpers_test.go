package rabbitmq_test

import (
	"testing"
	"time"
)

// consume takes n messages of queue through a consumer, acknowledging each (RabbitMQ
// counts them in message_stats.ack) when ack is set. Without ack the consumer takes messages
// in auto-ack mode (deliver_no_ack), in which the broker sends it all it has whatever the
// prefetch: the queue must then hold exactly n.
func (p *publisher) consume(t testing.TB, queue string, n int, ack bool) {
	t.Helper()
	ch, err := p.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ch.Close() }() // after the last ack, which the broker handles first
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(queue, "", !ack, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		select {
		case d := <-deliveries:
			if !ack {
				continue
			}
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no delivery from %s", queue)
		}
	}
}

// get takes n messages of queue by basic.get, acknowledging each when ack is set (counted in
// ack) or not (get_no_ack).
func (p *publisher) get(t testing.TB, queue string, n int, ack bool) {
	t.Helper()
	ch, err := p.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ch.Close() }()
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
