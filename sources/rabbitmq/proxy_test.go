package rabbitmq_test

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qscale/qscale/internal/loopback"
)

// tcpProxy forwards connections to the broker and counts them. Stopping it drops every
// connection and refuses new ones, which is what a client sees of a broker restart; with a
// TLS config it terminates TLS in front of the broker's plain ports.
type tcpProxy struct {
	target   string
	tls      *tls.Config
	addr     string
	accepted atomic.Int64
	frozen   atomic.Bool // swallow traffic, like a broker that hangs

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func newProxy(t testing.TB, target string, tc *tls.Config) *tcpProxy {
	t.Helper()
	broker(t)
	p := &tcpProxy{target: target, tls: tc, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	p.start(t)
	p.addr = p.ln.Addr().String()
	t.Cleanup(p.stop)
	return p
}

// start listens again on the proxy's address.
func (p *tcpProxy) start(t testing.TB) {
	t.Helper()
	var ln net.Listener
	err := loopback.RelistenWithin(30*time.Second, func() (err error) {
		ln, err = net.Listen("tcp", p.addr)
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

func (p *tcpProxy) serve(ln net.Listener) {
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
func (p *tcpProxy) track(c, up net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		_, _ = c.Close(), up.Close()
		return false
	}
	p.conns[c], p.conns[up] = true, true
	return true
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
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

// stop closes the listener and every connection through the proxy.
func (p *tcpProxy) stop() {
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
