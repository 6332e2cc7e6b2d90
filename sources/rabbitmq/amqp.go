package rabbitmq

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/qscale/qscale/sources"
)

// maxChannels is how many passive declares run at once. A channel answers one call at a
// time; a few of them over the one connection cut a poll of many queues by as much.
const maxChannels = 4

// loginDelay is how long RabbitMQ waits before it refuses a login, to slow down guessing.
const loginDelay = 3 * time.Second

// closeWait bounds how long closing a connection waits for the broker's close-ok.
const closeWait = 2 * time.Second

// amqpBackend reads ready-message counts with passive queue declares over one long-lived
// connection to one vhost. It dials lazily, on the first poll and again on the first poll
// after the connection was lost: a connection is never opened per poll.
type amqpBackend struct {
	base           string // scheme://host:port, for messages; never holds a password
	where          string // base and vhost, for messages
	url            string // the dial URL, without credentials (each dial gets its own SASL)
	user, password string
	external       bool // log in with the client certificate (SASL EXTERNAL)
	cfg            amqp.Config
	tls            *tls.Config // nil for amqp://

	// Poll is never concurrent (sources.Source), so these need no lock. Workers of a round
	// get channels handed over and hand them back through channels.
	conn   *amqp.Connection
	closed chan *amqp.Error // why conn closed, once it has
	idle   []*amqp.Channel
}

func newAMQPBackend(c *Config) (*amqpBackend, error) {
	e := c.Host.endpoint()
	user, password := c.credentials()
	b := &amqpBackend{
		base:     e.base(),
		where:    fmt.Sprintf("%s (vhost %q)", e.base(), c.vhost()),
		url:      e.scheme + "://" + e.addr + "/",
		user:     user,
		password: password,
		cfg:      amqp.Config{Vhost: c.vhost(), Properties: amqp.NewConnectionProperties()},
	}
	b.cfg.Properties.SetClientConnectionName("qscale")
	if c.Host.secure() {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.where, err)
		}
		b.tls = tc
	}
	// A client certificate and no password: log in as the certificate's subject, as KEDA does.
	b.external = user == "" && b.tls != nil && len(b.tls.Certificates) > 0
	return b, nil
}

// sasl returns the login for one dial. amqp091 blanks the password of a PlainAuth once
// logged in, so each dial needs its own. Without user or certificate, amqp091 logs in as
// guest/guest, RabbitMQ's default user.
func (b *amqpBackend) sasl() []amqp.Authentication {
	switch {
	case b.user != "":
		return []amqp.Authentication{&amqp.PlainAuth{Username: b.user, Password: b.password}}
	case b.external:
		return []amqp.Authentication{&amqp.ExternalAuth{}}
	}
	return nil
}

// declared is the outcome of one passive declare.
type declared struct {
	messages int
	err      error
	lost     bool // the connection, not just the queue, failed
}

func (b *amqpBackend) read(ctx context.Context, cs []*Config) []result {
	ctx, cancel := context.WithTimeout(ctx, shortestTimeout(cs))
	defer cancel()
	var queues []string
	seen := map[string]bool{}
	for _, c := range cs {
		if !seen[c.QueueName] {
			seen[c.QueueName] = true
			queues = append(queues, c.QueueName)
		}
	}
	got, err := b.declareAll(ctx, queues)
	out := make([]result, len(cs))
	for i, c := range cs {
		switch d := got[c.QueueName]; {
		case err != nil:
			out[i].err = err
		case d.err != nil:
			out[i].err = d.err
		default:
			n := float64(d.messages)
			out[i].queues = []queueStats{{Name: c.QueueName, Messages: n, Ready: n}}
		}
	}
	return out
}

// declareAll declares every queue passively. A connection that was lost since the last poll
// is often not yet known to be lost (the broker restarted, an operator closed it): then the
// round fails on it, and is tried once more on a new connection.
func (b *amqpBackend) declareAll(ctx context.Context, queues []string) (map[string]declared, error) {
	return sources.RoundOnConnection(ctx, b.conn != nil && !b.conn.IsClosed(), b.dial,
		func(ctx context.Context) (map[string]declared, error) { return b.round(ctx, queues) })
}

func (b *amqpBackend) dial(ctx context.Context) error {
	b.drop()
	cfg := b.cfg
	cfg.SASL = b.sasl()
	cfg.Dial = func(network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// The TLS and AMQP handshakes take no context: the poll's deadline bounds them.
		// amqp091 clears it once the connection is open.
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		return conn, nil
	}
	if b.tls != nil {
		cfg.TLSClientConfig = b.tls.Clone() // DialConfig fills in ServerName
	}
	deadline, hasDeadline := ctx.Deadline()
	allowed := time.Until(deadline)
	conn, err := amqp.DialConfig(b.url, cfg)
	switch {
	case err != nil && hasDeadline && !time.Now().Before(deadline):
		// amqp091 reports any failure during login as wrong credentials, a timeout included.
		err = explainDial(context.DeadlineExceeded, b.where)
		if allowed < loginDelay {
			err = fmt.Errorf("%w (RabbitMQ delays refusing a login by %s: a shorter timeout hides a wrong password)", err, loginDelay)
		}
		return err
	case err != nil && errors.Is(err, amqp.ErrClosed) && b.tls != nil && len(b.tls.Certificates) == 0:
		// Under TLS 1.3 the server checks the client's certificate after the client has
		// finished its handshake; the server's alert then races the reset of the connection,
		// and amqp091 may report only that the connection closed while opening.
		return fmt.Errorf("TLS: %s closed the connection as it opened: it probably wants a client certificate it trusts (set cert and key): %w", b.where, withhold(err))
	case err != nil:
		return explainAMQP(err, b.where, b.user)
	}
	b.conn, b.closed = conn, conn.NotifyClose(make(chan *amqp.Error, 1))
	return nil
}

// closeReason returns why the connection closed, as amqp091 tells its close listeners: a
// declare on a dead connection only learns that it is closed, not why (a TLS alert, a broker
// shutting down). The notice comes at once, if at all.
func (b *amqpBackend) closeReason(ctx context.Context, fallback error) error {
	select {
	case e, ok := <-b.closed:
		if ok && e != nil {
			return explainAMQP(e, b.where, b.user)
		}
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
	}
	return fallback
}

// drop forgets the connection and its channels. A connection still open is closed in the
// background: a broker that stopped answering must not hold the poll past its deadline.
func (b *amqpBackend) drop() {
	if c := b.conn; c != nil && !c.IsClosed() {
		go func() { _ = c.CloseDeadline(time.Now().Add(closeWait)) }()
	}
	b.conn, b.closed, b.idle = nil, nil, nil
}

func (b *amqpBackend) close() {
	if c := b.conn; c != nil && !c.IsClosed() {
		_ = c.CloseDeadline(time.Now().Add(closeWait))
	}
	b.conn, b.closed, b.idle = nil, nil, nil
}

type outcome struct {
	queue int
	d     declared
}

// round declares the queues over up to maxChannels channels at once and returns each
// queue's outcome, or an error when the connection failed or the deadline passed. A declare
// takes no context: when the deadline passes, the connection is closed, which ends every
// declare in flight, so that none outlives the poll.
func (b *amqpBackend) round(ctx context.Context, queues []string) (map[string]declared, error) {
	conn := b.conn
	stop := context.AfterFunc(ctx, func() { _ = conn.CloseDeadline(time.Now()) })
	defer stop()
	workers := min(len(queues), maxChannels)
	jobs := make(chan int, len(queues))
	for i := range queues {
		jobs <- i
	}
	close(jobs)
	results := make(chan outcome, len(queues))
	returned := make(chan *amqp.Channel, workers)
	for w := range workers {
		var ch *amqp.Channel
		if n := len(b.idle); n > 0 {
			ch, b.idle = b.idle[n-1], b.idle[:n-1]
		}
		if w == workers-1 {
			b.work(conn, ch, queues, jobs, results, returned) // the last one here: one queue needs no goroutine
			break
		}
		go b.work(conn, ch, queues, jobs, results, returned)
	}
	got := make(map[string]declared, len(queues))
	var lost error
	for range queues {
		o := <-results
		got[queues[o.queue]] = o.d
		if o.d.lost && lost == nil {
			lost = o.d.err
		}
	}
	for range workers {
		if ch := <-returned; ch != nil {
			b.idle = append(b.idle, ch)
		}
	}
	switch {
	case ctx.Err() != nil:
		b.drop()
		return nil, explainDial(ctx.Err(), b.where)
	case lost != nil:
		lost = b.closeReason(ctx, lost)
		b.drop()
		return nil, lost
	}
	return got, nil
}

// work declares queues taken from jobs on one channel. A declare that fails closes the
// channel (the broker does so on a missing queue): the worker opens another for its next job.
func (b *amqpBackend) work(conn *amqp.Connection, ch *amqp.Channel, queues []string, jobs <-chan int, results chan<- outcome, returned chan<- *amqp.Channel) {
	for i := range jobs {
		if ch == nil || ch.IsClosed() {
			var err error
			if ch, err = conn.Channel(); err != nil {
				results <- outcome{i, declared{err: explainAMQP(err, b.where, b.user), lost: true}}
				ch = nil
				continue
			}
		}
		q, err := ch.QueueDeclarePassive(queues[i], false, false, false, false, nil)
		if err != nil {
			results <- outcome{i, b.declareFailed(queues[i], err)}
			ch = nil
			continue
		}
		results <- outcome{i, declared{messages: q.Messages}}
	}
	returned <- ch
}

// declareFailed tells a queue the broker refused (missing, or not permitted) from a
// connection that failed under the declare.
func (b *amqpBackend) declareFailed(queue string, err error) declared {
	var ae *amqp.Error
	if !errors.As(err, &ae) || !ae.Server {
		return declared{err: explainAMQP(err, b.where, b.user), lost: true}
	}
	switch ae.Code {
	case amqp.NotFound:
		return declared{err: queueMissing(queue, b.cfg.Vhost, b.base)}
	case amqp.AccessRefused, amqp.ResourceLocked, amqp.PreconditionFailed:
		// AMQP's channel errors: the broker closed the channel, not the connection.
		return declared{err: explainAMQP(err, b.where, b.user)}
	}
	return declared{err: explainAMQP(err, b.where, b.user), lost: true}
}

// shortestTimeout is the timeout of a round that serves several triggers: the shortest of
// theirs, so that none waits longer than it asked.
func shortestTimeout(cs []*Config) time.Duration {
	var d time.Duration
	for _, c := range cs {
		if t := c.timeout(); t > 0 && (d == 0 || t < d) {
			d = t
		}
	}
	if d == 0 {
		d = defaultTimeout
	}
	return d
}
