package sources

import (
	"context"
	"errors"
	"fmt"
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
