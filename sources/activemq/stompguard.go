package activemq

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
)

// maxFrameBytes bounds one STOMP frame from the broker, command, headers and body: a
// statistics reply is about 1.5 KB (2 KB with long queue names), a CONNECTED frame a few
// hundred bytes, an ERROR frame with a Java stack trace a few KB. go-stomp reads a frame
// whole, and allocates a body as large as its content-length header says (up to 4 GiB)
// before it reads it: a frameGuard stops a larger frame before go-stomp has read its headers.
const maxFrameBytes = 64 << 10

// errFrameTooLarge is what a frameGuard fails a connection's reads with.
var errFrameTooLarge = errors.New("a STOMP frame larger than 64 KiB, the most qscale reads")

// guardedConn is a connection whose reads pass through a frameGuard. go-stomp reads it from
// one goroutine; tripped tells the poll's goroutine why the connection failed.
type guardedConn struct {
	net.Conn
	guard   frameGuard
	tripped atomic.Bool
}

func (c *guardedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.guard.scan(p[:n]) != nil {
		c.tripped.Store(true)
		return 0, errFrameTooLarge
	}
	return n, err
}

type guardState uint8

const (
	betweenFrames guardState = iota // heart-beats (end of lines) until a frame starts
	inHead                          // the command and header lines, until an empty line
	inBody                          // the body, until content-length bytes or a NUL
	atTerminator                    // the NUL after a body of content-length bytes
)

// keptLine is how much of a header line the guard keeps: enough for content-length: and
// ten digits. A content-length header longer than that is refused.
const keptLine = 32

var contentLength = []byte("content-length:")

// frameGuard follows the frames of a STOMP stream as they are read, and fails one larger
// than maxFrameBytes, or whose content-length says it would be. It follows STOMP 1.2's
// framing: frames end with a NUL, or after content-length bytes of body and a NUL; lines end
// with LF or CR LF; between frames there may be heart-beats, empty lines.
type frameGuard struct {
	state    guardState
	size     int // bytes of the current frame so far
	line     [keptLine]byte
	lineLen  int
	command  bool // the current line is the frame's command
	bodyLeft int  // bytes of body left; -1: the body ends at a NUL
}

// scan follows p, the next bytes of the stream.
func (g *frameGuard) scan(p []byte) error {
	for _, b := range p {
		if g.state == betweenFrames {
			if b == '\n' || b == '\r' {
				continue
			}
			g.state, g.size, g.lineLen, g.command, g.bodyLeft = inHead, 0, 0, true, -1
		}
		if g.size++; g.size > maxFrameBytes {
			return errFrameTooLarge
		}
		if err := g.step(b); err != nil {
			return err
		}
	}
	return nil
}

// step follows one byte of a frame.
func (g *frameGuard) step(b byte) error {
	switch g.state {
	case inHead:
		if b != '\n' {
			if g.lineLen < keptLine {
				g.line[g.lineLen] = b
			}
			g.lineLen++
			return nil
		}
		return g.endLine()
	case inBody:
		switch {
		case g.bodyLeft < 0 && b == 0:
			g.state = betweenFrames
		case g.bodyLeft > 0:
			if g.bodyLeft--; g.bodyLeft == 0 {
				g.state = atTerminator
			}
		}
	case atTerminator:
		g.state = betweenFrames // go-stomp checks that it is a NUL
	}
	return nil
}

// endLine handles the end of a head line: an empty one ends the head, a content-length
// header gives the body's length.
func (g *frameGuard) endLine() error {
	n := min(g.lineLen, keptLine)
	line := bytes.TrimSuffix(g.line[:n], []byte("\r"))
	command, long := g.command, g.lineLen > keptLine
	g.lineLen, g.command = 0, false
	switch {
	case command:
	case len(line) == 0:
		g.state = inBody
		if g.bodyLeft == 0 {
			g.state = atTerminator
		}
	case bytes.HasPrefix(line, contentLength):
		if long {
			return errFrameTooLarge
		}
		v, err := strconv.Atoi(string(line[len(contentLength):]))
		if err == nil && v > maxFrameBytes {
			return errFrameTooLarge
		}
		if err == nil && g.bodyLeft < 0 { // the first one counts, as in go-stomp
			g.bodyLeft = v
		}
	}
	return nil
}
