package activemq_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
)

// httpProxy forwards HTTP requests to target and counts them by method, to check which
// requests a Source makes. With refusePost it answers every POST with 405 Method Not
// Allowed, as a proxy in front of the agent that lets only GET through.
type httpProxy struct {
	addr        string
	gets, posts atomic.Int64
}

func newHTTPProxy(t testing.TB, target string, refusePost bool) *httpProxy {
	t.Helper()
	p := &httpProxy{}
	forward := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	// A transport of its own: httptest.Server.Close closes the idle connections of
	// http.DefaultTransport, which would cut this proxy's reads when a parallel test ends.
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	forward.Transport = transport
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			p.gets.Add(1)
		case http.MethodPost:
			p.posts.Add(1)
			if refusePost {
				http.Error(w, "POST is not allowed here", http.StatusMethodNotAllowed)
				return
			}
		}
		// The body is read here, whole, before it is forwarded: a transport that streams it
		// from the incoming connection still reads it, looking for its end, when the
		// agent's answer arrives, and the server may close it then; the transport takes
		// that for a failed request and closes its connection to the agent mid-answer.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.addr = srv.Listener.Addr().String()
	return p
}

// wantRequests checks the GETs and POSTs the proxy has forwarded or refused.
func (p *httpProxy) wantRequests(t testing.TB, gets, posts int64) {
	t.Helper()
	if g, n := p.gets.Load(), p.posts.Load(); g != gets || n != posts {
		t.Errorf("requests: %d GET, %d POST; want %d GET, %d POST", g, n, gets, posts)
	}
}
