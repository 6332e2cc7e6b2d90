package share

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	"github.com/qscale/qscale/internal/shard"
)

// maxPending bounds the samples waiting for one peer. A peer that cannot keep up loses the
// oldest: a newer poll of the same trigger follows within its interval anyway.
const maxPending = 100_000

// postTimeout bounds one post to a peer.
const postTimeout = 10 * time.Second

// Sender sends the samples this replica polls to every live peer. Each peer has a queue of
// its own and one post in flight at most, so a slow or gone peer delays no other, and no
// poll ever waits on a peer.
type Sender struct {
	// Self is this replica's identity, sent as Batch.From.
	Self string
	// Peers returns the live members other than this replica.
	Peers func() []shard.Member
	// Client returns the HTTP client that reaches a member.
	Client  func(shard.Member) (*http.Client, error)
	Metrics *Metrics
	Log     logr.Logger

	mu     sync.Mutex
	ctx    context.Context
	queues map[string]*queue // by identity
}

type queue struct {
	member  shard.Member
	client  *http.Client
	wake    chan struct{}
	stop    context.CancelFunc
	mu      sync.Mutex
	pending []Polled
}

// Start runs the queues until ctx ends. It implements controller-runtime's
// manager.Runnable.
func (s *Sender) Start(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	for id, q := range s.queues {
		q.stop()
		delete(s.queues, id)
	}
	s.mu.Unlock()
	return nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica sends.
func (*Sender) NeedLeaderElection() bool { return false }

// Send queues polled for every live peer and returns at once.
func (s *Sender) Send(polled []Polled) {
	if len(polled) == 0 {
		return
	}
	for _, q := range s.Reconcile() {
		q.mu.Lock()
		q.pending = append(q.pending, polled...)
		if over := len(q.pending) - maxPending; over > 0 {
			q.pending = append(q.pending[:0], q.pending[over:]...)
			s.Metrics.sent(resultDropped, over)
		}
		q.mu.Unlock()
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// Reconcile starts a queue for each live peer and stops those of members gone or changed,
// and returns the queues running. It is called by Send, and when the members change.
func (s *Sender) Reconcile() []*queue {
	peers := s.Peers()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil || s.ctx.Err() != nil {
		return nil
	}
	if s.queues == nil {
		s.queues = map[string]*queue{}
	}
	keep := map[string]bool{}
	out := make([]*queue, 0, len(peers))
	for _, p := range peers {
		keep[p.Identity] = true
		q, ok := s.queues[p.Identity]
		if ok && q.member != p {
			q.stop()
			ok = false
		}
		if !ok {
			client, err := s.Client(p)
			if err != nil {
				s.Log.Error(err, "cannot reach a peer", "peer", p.Identity, "address", p.Address)
				delete(s.queues, p.Identity)
				continue
			}
			ctx, cancel := context.WithCancel(s.ctx)
			q = &queue{member: p, client: client, wake: make(chan struct{}, 1), stop: cancel}
			s.queues[p.Identity] = q
			go s.run(ctx, q)
		}
		out = append(out, q)
	}
	for id, q := range s.queues {
		if !keep[id] {
			q.stop()
			delete(s.queues, id)
		}
	}
	return out
}

// run posts q's pending samples, one batch at a time, until ctx ends.
func (s *Sender) run(ctx context.Context, q *queue) {
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		q.mu.Lock()
		batch := q.pending
		q.pending = nil
		q.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		if err := s.post(ctx, q, batch); err != nil {
			s.Metrics.sent(resultFailed, len(batch))
			if ctx.Err() == nil && !failing { // once per outage: a peer killed stays listed until its Lease expires
				s.Log.Info("could not send samples to a peer; it gets the next ones", "peer", q.member.Identity, "address", q.member.Address, "error", err.Error())
			}
			failing = true
			continue
		}
		if failing {
			s.Log.Info("sending samples to a peer again", "peer", q.member.Identity)
		}
		failing = false
		s.Metrics.sent(resultSent, len(batch))
	}
}

func (s *Sender) post(ctx context.Context, q *queue, polled []Polled) error {
	now := time.Now()
	b := Batch{From: s.Self, Samples: make([]Sample, len(polled))}
	for i, p := range polled {
		b.Samples[i] = encode(p, now)
	}
	body, err := json.Marshal(b)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, postTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+q.member.Address+Path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := q.client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("the peer answered %s", resp.Status)
	}
	return nil
}

// PinnedClients returns a Client for Sender that reaches a member with the credentials of
// cfg (its bearer token or client certificate: the peer authenticates and authorizes this
// replica as the API server would) and trusts only the serving certificate whose digest the
// member's Lease names. A replica's certificate is often self-signed, so no authority could
// vouch for it; its digest, published through the API server, does.
func PinnedClients(cfg *rest.Config) func(shard.Member) (*http.Client, error) {
	return func(m shard.Member) (*http.Client, error) {
		c := rest.CopyConfig(cfg)
		c.Host = "https://" + m.Address
		c.TLSClientConfig = rest.TLSClientConfig{Insecure: true, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile,
			CertData: cfg.CertData, KeyData: cfg.KeyData}
		tlsCfg, err := rest.TLSConfigFor(c)
		if err != nil {
			return nil, err
		}
		if tlsCfg == nil {
			tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		// The chain is not checked against an authority: VerifyConnection checks the leaf
		// against the digest in the member's Lease instead, on every connection, resumed
		// sessions included.
		tlsCfg.InsecureSkipVerify = true
		tlsCfg.VerifyConnection = pin(m.Fingerprint)
		tr := &http.Transport{TLSClientConfig: tlsCfg, TLSHandshakeTimeout: 5 * time.Second, MaxIdleConnsPerHost: 2,
			IdleConnTimeout: 90 * time.Second, ResponseHeaderTimeout: postTimeout}
		rt, err := rest.HTTPWrappersForConfig(c, tr)
		if err != nil {
			return nil, err
		}
		return &http.Client{Transport: rt, Timeout: postTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}, nil
	}
}

// pin accepts a TLS peer whose leaf certificate has the SHA-256 digest fingerprint (hex).
func pin(fingerprint string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the peer presented no certificate")
		}
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		if hex.EncodeToString(sum[:]) != fingerprint {
			return errors.New("the peer's certificate is not the one its membership Lease names")
		}
		return nil
	}
}

// Fingerprint is the hex SHA-256 digest of a DER certificate, as a member's Lease publishes
// that of its serving certificate.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
