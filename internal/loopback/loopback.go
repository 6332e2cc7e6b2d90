// Package loopback finds free TCP ports on 127.0.0.1 for the servers that tests start as
// separate processes (brokers, a control plane), which must be told their ports up front.
package loopback

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// FreePorts returns n distinct loopback ports that were free a moment ago. Another process
// may take one before it is used; the ports are held together while they are chosen, so at
// least they are never handed out twice in one call.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// RelistenWithin runs listen, which binds ports chosen earlier (a server restarted on the
// ports it had), again while it fails because a port is in use, until timeout. Between a
// server's stop and its restart another test may briefly hold one of its ports; nothing
// else is retried.
func RelistenWithin(timeout time.Duration, listen func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := listen()
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
