// Package loopback finds free TCP ports on 127.0.0.1 for the servers that tests start as
// separate processes (brokers, a control plane), which must be told their ports up front.
package loopback

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FreePorts returns n distinct loopback ports that were free a moment ago. Another process
// may take one before it is used; the ports are held together while they are chosen, so at
// least they are never handed out twice in one call. They are chosen below the system's
// ephemeral range where it leaves room (see fixedPorts): outgoing connections and listeners
// on port 0, which every test opens by the hundred, draw their ports from that range, so
// none of them can take a port between its choice and the server binding it.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	lo, hi := fixedPorts()
	for range n {
		l := listenBetween(lo, hi, ports)
		if l == nil {
			var err error
			if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
				return nil, err
			}
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ephemeralRange is where Linux says its ephemeral ports lie.
const ephemeralRange = "/proc/sys/net/ipv4/ip_local_port_range"

// fixedPorts is the range [lo, hi) that FreePorts picks from: from 10000 to the start of the
// ephemeral range, or empty where that leaves fewer than 1,000 ports or the range is unknown.
func fixedPorts() (lo, hi int) {
	b, err := os.ReadFile(ephemeralRange)
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	start, err := strconv.Atoi(f[0])
	if err != nil || start < 11000 {
		return 0, 0
	}
	return 10000, start
}

// listenBetween listens on a random free port in [lo, hi) other than those taken, or
// returns nil after a hundred tries.
func listenBetween(lo, hi int, taken []int) net.Listener {
	if hi <= lo {
		return nil
	}
	for range 100 {
		p := lo + rand.IntN(hi-lo) //nolint:gosec // spreads test ports; it guards nothing
		if slices.Contains(taken, p) {
			continue
		}
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			return l
		}
	}
	return nil
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
