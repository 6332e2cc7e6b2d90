package kafka_test

import (
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/qscale/qscale/sources/internal/sourcetest"
)

// maxPollAlloc bounds what one poll of a hostile broker may allocate: a few hundred KB when
// answers are read as asked; hundreds of MB when a buffer or slice is sized by a number the
// broker chose.
const maxPollAlloc = 64 << 20

// oversizedBroker returns the address of a loopback server that answers every request with
// the size of a response of size bytes, and then closes the connection.
func oversizedBroker(t *testing.T, size uint32) string {
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
				var hdr [4]byte
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return
				}
				if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(hdr[:]))); err != nil {
					return
				}
				binary.BigEndian.PutUint32(hdr[:], size)
				_, _ = c.Write(hdr[:])
			}()
		}
	}()
	return ln.Addr().String()
}

// A broker announcing a response far larger than any answer qscale asks for is refused
// before the client allocates a buffer for it.
func TestOversizedAnswerIsRefused(t *testing.T) {
	addr := oversizedBroker(t, 90<<20)
	tr := parse(t, map[string]string{"bootstrapServers": addr, "consumerGroup": "g", "topic": "orders"}, nil)
	pool := newPool(t)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := pollOnce(t, pool, 2*time.Second, tr)[0]
	runtime.ReadMemStats(&after)
	sourcetest.WantSample(t, got, "", 0, false, "kafka cluster "+addr)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > maxPollAlloc {
		t.Errorf("one poll allocated %d MB for answers announced at 90 MB", grew>>20)
	}
}
