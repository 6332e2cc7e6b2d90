package sourcetest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Marker stands for a secret in what a hostile endpoint answers: an internal page that a
// tenant points a trigger at. No error, and so no Event, may repeat it.
const Marker = "SECRET-7f3a"

// HTTPServer serves h on a loopback HTTP server that stops when t ends, and returns its
// host:port. A hostile endpoint is the thing under test: it answers what h writes.
func HTTPServer(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// Answer returns a handler that answers every request with status and body.
func Answer(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// Endpoint is RawServer(t, raw) when raw is set, else HTTPServer(t, h): one case of a table of
// hostile endpoints.
func Endpoint(t testing.TB, raw string, h http.HandlerFunc) string {
	t.Helper()
	if raw != "" {
		return RawServer(t, raw)
	}
	return HTTPServer(t, h)
}

// RawServer answers every connection on a loopback port with answer, byte for byte, once
// the client has sent something (an HTTP request, AMQP's protocol header), then ends it; it
// stops when t ends and returns its host:port. It can send what no HTTP server would: a
// status line of its own words, or no HTTP at all.
func RawServer(t testing.TB, answer string) string {
	t.Helper()
	return Serve(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4096)
		if _, err := c.Read(buf); err != nil {
			return
		}
		if _, err := c.Write([]byte(answer)); err != nil {
			return
		}
		// Closing with unread data would reset the connection, and the client might see the
		// reset rather than the answer: end the writing side, and read on until the client
		// closes.
		_ = c.(*net.TCPConn).CloseWrite()
		_, _ = io.Copy(io.Discard, c)
	})
}

// Serve listens on a loopback port and runs serve on each connection it accepts, in a
// goroutine of its own, closing the connection after; it stops when t ends and returns its
// host:port. A hostile broker is a serve function.
func Serve(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// WantNoMarker fails t when err repeats Marker.
func WantNoMarker(t testing.TB, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), Marker) {
		t.Errorf("error repeats what the endpoint answered: %v", err)
	}
}
