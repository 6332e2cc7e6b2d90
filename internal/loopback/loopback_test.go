package loopback

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestFreePortsAreDistinctAndFree(t *testing.T) {
	ports, err := FreePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 5 {
		t.Fatalf("got %d ports, want 5", len(ports))
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d handed out twice in %v", p, ports)
		}
		seen[p] = true
		if lo, hi := fixedPorts(); hi > lo && (p < lo || p >= hi) {
			t.Errorf("port %d is outside [%d, %d), below the ephemeral range", p, lo, hi)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		_ = l.Close()
	}
}

func TestRelistenWithin(t *testing.T) {
	ports, err := FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	holder, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// In order: the holder keeps the port through the first case and lets go in the second.
	tests := []struct {
		name    string
		release bool // the holder lets go after the first refused attempt
		other   error
		want    func(error) bool
	}{
		{name: "the port stays taken", want: func(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }},
		{name: "the port comes free", release: true, want: func(err error) bool { return err == nil }},
		{name: "another error is not retried", other: errors.New("bad config"), want: func(err error) bool { return err != nil && err.Error() == "bad config" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attempts := 0
			err := RelistenWithin(500*time.Millisecond, func() error {
				attempts++
				if tt.other != nil {
					return tt.other
				}
				l, err := net.Listen("tcp", addr)
				if err != nil {
					if tt.release {
						_ = holder.Close()
					}
					return err
				}
				_ = l.Close()
				return nil
			})
			if !tt.want(err) {
				t.Fatalf("RelistenWithin = %v after %d attempts", err, attempts)
			}
			if tt.other != nil && attempts != 1 {
				t.Errorf("%d attempts, want 1", attempts)
			}
			if tt.release && attempts != 2 {
				t.Errorf("%d attempts, want 2", attempts)
			}
		})
	}
}
