package sourcetest

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qscale/qscale/internal/loopback"
)

// Proxy forwards TCP connections to a broker and counts them, to check how many connections
// a Source opens. Stopping it drops every connection and refuses new ones, which is what a
// client sees of a broker restart; frozen, it swallows traffic like a broker that hangs; with
// a TLS config it terminates TLS in front of the broker's plain ports.
type Proxy struct {
	Addr string // where clients connect

	target   string
	tls      *tls.Config
	accepted atomic.Int64
	frozen   atomic.Bool

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

// NewProxy starts a Proxy to target on a free loopback port; tc, when not nil, is the TLS
// it serves. It stops when t ends.
func NewProxy(t testing.TB, target string, tc *tls.Config) *Proxy {
	t.Helper()
	p := &Proxy{target: target, tls: tc, Addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	p.Start(t)
	p.Addr = p.ln.Addr().String()
	t.Cleanup(p.Stop)
	return p
}

// Accepted is the number of connections clients have opened through the proxy.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Freeze makes the proxy swallow traffic in both directions (true) or forward it again.
func (p *Proxy) Freeze(frozen bool) { p.frozen.Store(frozen) }

// Start listens again on the proxy's address after Stop.
func (p *Proxy) Start(t testing.TB) {
	t.Helper()
	var ln net.Listener
	err := loopback.RelistenWithin(30*time.Second, func() (err error) {
		ln, err = net.Listen("tcp", p.Addr)
		return err
	})
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.serve(ln)
}

// Stop closes the listener and every connection through the proxy.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *Proxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		if p.tls != nil {
			c = tls.Server(c, p.tls)
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		if !p.track(c, up) {
			return
		}
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// track registers a pair of connections, or closes them when the proxy stopped meanwhile.
func (p *Proxy) track(c, up net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		_, _ = c.Close(), up.Close()
		return false
	}
	p.conns[c], p.conns[up] = true, true
	return true
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer func() { _, _ = dst.Close(), src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
