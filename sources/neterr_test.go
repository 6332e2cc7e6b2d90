package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
)

func TestExplainDial(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"deadline", fmt.Errorf("reading: %w", context.DeadlineExceeded), "amqp://b:5672 did not answer in time (timeout)"},
		{"network timeout", &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}, "amqp://b:5672 did not answer in time (timeout)"},
		{"unknown host", &net.DNSError{Err: "no such host", Name: "b"}, "cannot resolve the host of amqp://b:5672"},
		{"refused", refused, "cannot connect to amqp://b:5672: is RabbitMQ running and the port right?"},
		{"anything else", errors.New("boom"), "amqp://b:5672: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ExplainDial(tt.err, "amqp://b:5672", "RabbitMQ")
			if !strings.HasPrefix(got.Error(), tt.want) || !errors.Is(got, tt.err) {
				t.Errorf("ExplainDial = %q; want it to start with %q and wrap the cause", got, tt.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestOwnWords(t *testing.T) {
	const marker = "SECRET-7f3a"
	quoting := fmt.Errorf("malformed HTTP response %q", marker) // as net/http quotes a server's first line
	tests := []struct {
		name     string
		err      error
		withheld bool
	}{
		{name: "a deadline is the system's", err: fmt.Errorf("reading: %w", context.DeadlineExceeded)},
		{name: "a cut answer is the system's", err: io.ErrUnexpectedEOF},
		{name: "a refused connection is the system's", err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}},
		{name: "text a library built from the answer is withheld", err: quoting, withheld: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := OwnWords(tt.err, "our words")
			if tt.withheld != (got.Error() == "our words") {
				t.Errorf("OwnWords(%v) = %q", tt.err, got)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("the error is not kept for errors.Is: %v", got)
			}
			if tt.withheld && strings.Contains(got.Error(), marker) {
				t.Errorf("the server's words came through: %q", got)
			}
		})
	}
}
