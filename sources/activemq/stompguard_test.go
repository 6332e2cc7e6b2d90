package activemq

import (
	"strconv"
	"strings"
	"testing"
)

func TestFrameGuard(t *testing.T) {
	frame := func(command, body string, headers ...string) string {
		return command + "\n" + strings.Join(append(headers, ""), "\n") + "\n" + body + "\x00"
	}
	big := strings.Repeat("x", maxFrameBytes)
	stats := "<map>\n  <entry>\n    <string>size</string>\n    <long>3</long>\n  </entry>\n</map>"
	tests := []struct {
		name    string
		stream  string
		wantErr bool
	}{
		{name: "CONNECTED, then a statistics reply", stream: frame("CONNECTED", "", "version:1.2", "heart-beat:0,0") +
			frame("MESSAGE", stats, "subscription:0", "content-length:"+strconv.Itoa(len(stats)))},
		{name: "heart-beats between frames, CR LF lines", stream: "\n\r\n" + strings.ReplaceAll(frame("MESSAGE", "<map/>", "content-length:6"), "\n", "\r\n") + "\n\n"},
		{name: "a body holding NULs, by its content-length", stream: frame("MESSAGE", "a\x00b\x00c", "content-length:5") + frame("RECEIPT", "", "receipt-id:1")},
		{name: "the largest frame", stream: frame("MESSAGE", big[:maxFrameBytes-len("MESSAGE\n\n\x00")])},
		{name: "a body larger than the bound, without content-length", stream: frame("MESSAGE", big), wantErr: true},
		{name: "a content-length larger than the bound", stream: "MESSAGE\ncontent-length:4294967295\n\n", wantErr: true},
		{name: "a content-length larger than the bound, after another", stream: "MESSAGE\ncontent-length:1\ncontent-length:999999\n\n", wantErr: true},
		{name: "a content-length padded with zeros", stream: "MESSAGE\ncontent-length:" + strings.Repeat("0", 40) + "1\n\nx\x00", wantErr: true},
		{name: "a header line without end", stream: "MESSAGE\nx:" + big, wantErr: true},
		{name: "a body of content-length NULs, then more frames", stream: frame("MESSAGE", strings.Repeat("\x00", 100), "content-length:100") + frame("MESSAGE", "<map/>")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Read in chunks of every size up to 7 bytes: frames cross reads.
			for chunk := 1; chunk <= 7; chunk++ {
				var g frameGuard
				var err error
				for i := 0; i < len(tt.stream) && err == nil; i += chunk {
					err = g.scan([]byte(tt.stream[i:min(i+chunk, len(tt.stream))]))
				}
				if (err != nil) != tt.wantErr {
					t.Fatalf("chunks of %d: err = %v, want an error: %v", chunk, err, tt.wantErr)
				}
				if err == nil && g.state != betweenFrames {
					t.Fatalf("chunks of %d: the stream ends inside a frame (state %d)", chunk, g.state)
				}
			}
		})
	}
}
