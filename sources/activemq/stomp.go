package activemq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/qscale/qscale/sources"
)

// The statistics plugin's protocol: a message sent to statsPrefix+<queue> with a reply-to
// destination is answered there with one jms-map-xml map per destination the name matches,
// each carrying the query's correlation id. With the endOfList header the plugin also sends
// an empty map after the last one, so an unknown queue is answered at once with just that.
const (
	statsPrefix = "/queue/ActiveMQ.Statistics.Destination."
	endOfList   = "ActiveMQ.Statistics.Destination.List.End.With.Null"
)

// closeWait bounds how long Close waits for the broker to acknowledge a DISCONNECT.
const closeWait = 2 * time.Second

// heartBeat is how often the client offers to show the broker it is alive.
const heartBeat = time.Minute

// stompBackend queries the statistics plugin over one long-lived STOMP connection. It
// dials lazily, on the first poll and again on the first poll after the connection broke:
// a connection is never opened per poll.
type stompBackend struct {
	addr           string // host:port
	where          string // for messages
	user, password string
	replyTo        string // this connection's temporary reply queue
	idPrefix       string // makes correlation ids unique across connections and restarts
	seq            uint64

	// Poll is never concurrent (sources.Source), so these need no lock.
	conn  *stomp.Conn
	sub   *stomp.Subscription // the replies, on replyTo
	guard *guardedConn        // conn's connection, which tells a frame too large
}

func newSTOMPBackend(c *Config) *stompBackend {
	id := randomID()
	return &stompBackend{
		addr:     c.StompEndpoint,
		where:    "ActiveMQ at stomp://" + c.StompEndpoint,
		user:     c.Username,
		password: c.Password,
		replyTo:  "/temp-queue/qscale-" + id,
		idPrefix: "qscale-" + id + "-",
	}
}

// query is one queue's statistics query within a round.
type query struct {
	queue  string
	counts bool // a backlog-age trigger reads the queue: its reply must hold the counts
	found  bool
	stats  destStats
	err    error // a reply that could not be read, or replies that disagree
	done   bool  // the end of its list has arrived, or err is set
}

func (b *stompBackend) read(ctx context.Context, cs []*Config) []result {
	var queues []string
	counts := map[string]bool{}
	for _, c := range cs {
		if _, seen := counts[c.DestinationName]; !seen {
			queues = append(queues, c.DestinationName)
		}
		counts[c.DestinationName] = counts[c.DestinationName] || c.ScalesOnBacklogAge()
	}
	got, err := b.queryAll(ctx, queues, counts)
	out := make([]result, len(cs))
	for i, c := range cs {
		q := got[c.DestinationName]
		switch {
		case err != nil:
			out[i].err = err
		case q.err != nil:
			out[i].err = q.err
		case !q.found:
			out[i].err = queueMissing(c.DestinationName, c.BrokerName, "stomp://"+b.addr)
		case c.BrokerName != "" && c.BrokerName != q.stats.Broker:
			// The broker's own name is its words: not repeated.
			out[i].err = fmt.Errorf("brokerName is %q but the broker at stomp://%s has another name (the brokerName of its activemq.xml)", c.BrokerName, b.addr)
		case c.ScalesOnBacklogAge() && q.stats.countsErr != nil:
			out[i].err = b.unusable(q.queue, q.stats.countsErr)
		default:
			out[i] = result{size: q.stats.Size, enqueued: q.stats.Enqueued, dequeued: q.stats.Dequeued, counted: q.counts}
		}
	}
	return out
}

// queryAll queries every queue in one round, those that counts marks with their counts. A
// connection that broke since the last poll is often not known to be broken yet (the broker
// restarted): then the round fails on it, and is tried once more on a new connection.
func (b *stompBackend) queryAll(ctx context.Context, queues []string, counts map[string]bool) (map[string]*query, error) {
	return sources.RoundOnConnection(ctx, b.conn != nil && b.sub.Active(), b.dial,
		func(ctx context.Context) (map[string]*query, error) { return b.round(ctx, queues, counts) })
}

func (b *stompBackend) dial(ctx context.Context) error {
	b.drop()
	var d net.Dialer
	dialed, err := d.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return explainDial(err, b.where)
	}
	nc := &guardedConn{Conn: dialed}
	// The STOMP handshake takes no context: the poll's deadline bounds it.
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	opts := []func(*stomp.Conn) error{
		// Send heart-beats, which keep the idle connection open between polls through
		// firewalls and the broker's inactivity monitor, but expect none: go-stomp would
		// close the connection after a minute of silence even from a broker that never
		// promised to send any. A broker gone silent fails the poll at its deadline instead.
		stomp.ConnOpt.HeartBeat(heartBeat, 0),
		stomp.ConnOpt.Logger(quiet{}),
		stomp.ConnOpt.MsgSendTimeout(pollTimeout),
		stomp.ConnOpt.DisconnectReceiptTimeout(closeWait),
	}
	if b.user != "" {
		opts = append(opts, stomp.ConnOpt.Login(b.user, b.password))
	}
	conn, err := stomp.Connect(nc, opts...)
	if err != nil {
		_ = nc.Close()
		return b.explainConnect(err, nc)
	}
	_ = nc.SetDeadline(time.Time{}) // the connection outlives this poll
	// Replies arrive as maps, which STOMP cannot carry: ask for them as XML.
	sub, err := conn.Subscribe(b.replyTo, stomp.AckAuto, stomp.SubscribeOpt.Header("transformation", "jms-map-xml"))
	if err != nil {
		_ = conn.MustDisconnect()
		return explainDial(err, b.where)
	}
	b.conn, b.sub, b.guard = conn, sub, nc
	return nil
}

// explainConnect says why the broker refused a connection. It answers a wrong login with
// an ERROR frame; its words are read to tell that case, never repeated.
func (b *stompBackend) explainConnect(err error, nc *guardedConn) error {
	var se stomp.Error
	switch {
	case nc.tripped.Load():
		return fmt.Errorf("%s sent %w", b.where, errFrameTooLarge)
	case !errors.As(err, &se) || se.Frame == nil:
		return explainDial(err, b.where)
	case se.Frame.Command == frame.CONNECTED:
		return fmt.Errorf("%s answered CONNECTED with a version or heart-beat that qscale cannot use", b.where)
	case se.Frame.Command != frame.ERROR:
		return fmt.Errorf("%s answered the connection with a frame other than CONNECTED: is this the STOMP port?", b.where)
	case strings.Contains(strings.ToLower(se.Message), "password") || strings.Contains(se.Message, "User name"):
		return fmt.Errorf("%s refused the login of user %q: wrong username or password", b.where, b.user)
	}
	return fmt.Errorf("%s refused the connection (an ERROR frame)", b.where)
}

// round sends a query per queue and reads the replies until every list has ended. Replies
// are told apart by correlation id; those of earlier rounds are ignored. When the deadline
// passes, the connection is dropped: a broker that does not answer in time is not trusted
// to answer the next poll on it.
func (b *stompBackend) round(ctx context.Context, queues []string, counts map[string]bool) (map[string]*query, error) {
	byID := make(map[string]*query, len(queues))
	byQueue := make(map[string]*query, len(queues))
	ids := make([]string, len(queues))
	for i, q := range queues {
		b.seq++
		ids[i] = b.idPrefix + strconv.FormatUint(b.seq, 10)
		byID[ids[i]] = &query{queue: q, counts: counts[q]}
		byQueue[q] = byID[ids[i]]
	}
	sent := b.sendAll(ctx, queues, ids)
	for pending := len(queues); pending > 0; {
		select {
		case err := <-sent:
			sent = nil // a nil channel is never ready: the select waits on the replies alone
			if err != nil {
				b.drop()
				// go-stomp's send errors are its own: no receipt is asked for, so no frame
				// of the broker's reaches them.
				return nil, fmt.Errorf("%s: sending a statistics query: %w", b.where, err)
			}
		case msg, ok := <-b.sub.C:
			if !ok || msg.Err != nil {
				err := b.lost(msg)
				b.drop()
				return nil, err
			}
			if b.take(byID, msg) {
				pending--
			}
		case <-ctx.Done():
			b.drop()
			return nil, fmt.Errorf("%w: is the statistics plugin (<statisticsBrokerPlugin/>) enabled on the broker? Without it nothing answers", explainDial(ctx.Err(), b.where))
		}
	}
	return byQueue, nil
}

// sendAll sends the queries from a goroutine of its own, and reports on the channel it
// returns when they are all sent, or the first error. The replies must be read meanwhile:
// go-stomp hands frames over through small buffers, and a client that only writes while
// the broker answers would block both ways.
func (b *stompBackend) sendAll(ctx context.Context, queues, ids []string) <-chan error {
	conn, replyTo := b.conn, b.replyTo
	// Without the plugin a query would stay in a queue of that name: let it expire.
	expires := strconv.FormatInt(time.Now().Add(pollTimeout).UnixMilli(), 10)
	done := make(chan error, 1)
	go func() {
		for i, q := range queues {
			if err := ctx.Err(); err != nil {
				done <- err
				return
			}
			err := conn.Send(statsPrefix+q, "", nil,
				stomp.SendOpt.Header("reply-to", replyTo),
				stomp.SendOpt.Header("correlation-id", ids[i]),
				stomp.SendOpt.Header(endOfList, "true"),
				stomp.SendOpt.Header("expires", expires))
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

// take records a reply in its query, and reports whether it ended the query's list. A reply
// that cannot be read, or a second reply for the queue that disagrees with the first, fails
// the query, and ends it: which figure would be right?
func (b *stompBackend) take(byID map[string]*query, msg *stomp.Message) (ended bool) {
	qu := byID[msg.Header.Get("correlation-id")]
	if qu == nil || qu.done {
		return false
	}
	s, err := parseStats(msg.Body, qu.counts)
	switch {
	case err != nil:
		qu.err = b.unusable(qu.queue, err)
	case s.End:
	case s.Destination != "queue://"+qu.queue:
		return false
	case qu.found && !s.sameFigures(qu.stats):
		qu.err = fmt.Errorf("%s answered the statistics query for queue %q twice, with different figures", b.where, qu.queue)
	default:
		qu.found, qu.stats = true, s
		return false
	}
	qu.done = true
	return true
}

// unusable is the error of a statistics reply for queue that err says is malformed.
func (b *stompBackend) unusable(queue string, err error) error {
	return fmt.Errorf("%s answered the statistics query for queue %q with a reply qscale cannot use: %w", b.where, queue, err)
}

// lost explains a reply subscription that ended: the connection broke, or the broker ended
// it with an ERROR frame, whose words are not repeated.
func (b *stompBackend) lost(msg *stomp.Message) error {
	reason := "connection closed"
	var se *stomp.Error
	switch {
	case b.guard != nil && b.guard.tripped.Load():
		reason = "the broker sent " + errFrameTooLarge.Error()
	case msg == nil || msg.Err == nil:
	case errors.As(msg.Err, &se):
		reason = "ended with an ERROR frame"
	default:
		reason = ownWords(msg.Err).Error()
	}
	return fmt.Errorf("connection to %s lost (%s); the next poll reconnects", b.where, reason)
}

// drop forgets the connection. It is closed in the background, and its subscription drained
// so that go-stomp's goroutines can end: a broker that stopped answering must not hold the
// poll past its deadline.
func (b *stompBackend) drop() {
	if b.conn == nil {
		return
	}
	conn, sub := b.conn, b.sub
	b.conn, b.sub, b.guard = nil, nil, nil
	go func() {
		_ = conn.MustDisconnect()
		for range sub.C {
			// the replies of an abandoned round are of no use
		}
	}()
}

// close disconnects politely, so that the broker logs no broken connection.
func (b *stompBackend) close() {
	if b.conn == nil {
		return
	}
	_ = b.conn.Disconnect() // waits for the receipt at most closeWait
	b.drop()
}

func randomID() string {
	p := make([]byte, 6)
	_, _ = rand.Read(p) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(p)
}

// quiet drops go-stomp's log lines: every error that matters reaches the poll's result.
type quiet struct{}

func (quiet) Debugf(string, ...any)   {}
func (quiet) Infof(string, ...any)    {}
func (quiet) Warningf(string, ...any) {}
func (quiet) Errorf(string, ...any)   {}
func (quiet) Debug(string)            {}
func (quiet) Info(string)             {}
func (quiet) Warning(string)          {}
func (quiet) Error(string)            {}
