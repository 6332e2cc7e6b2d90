package activemq

import (
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
)

// The parsers of the broker's replies are fed anything. Whatever they are fed, they do not
// panic, they allocate in proportion to the reply, and they either return figures that are
// finite and not negative, or a *badReply, whose text, made of numbers and fixed words,
// cannot repeat the reply.

// hostileJolokia are replies a hostile agent could send, the marker in every place.
var hostileJolokia = []string{
	`{"status":200,"value":"` + marker + `"}`,
	`{"status":200,"value":-5,"value":5}`,
	`{"status":200,"value":{"` + marker + `":[1,2,{"x":null}]}}`,
	`{"status":403,"error":"HTTP method POST ` + marker + `","error_type":"` + marker + `"}`,
	`{"status":"` + marker + `","value":1e400}`,
	`{"status":200.5,"value":1}`,
	`<html><title>` + marker + `</title></html>`,
	`{"status":200,"value":1} ` + marker,
}

func FuzzParseJolokia(f *testing.F) {
	for _, name := range []string{"jolokia-size.json", "jolokia-missing.json", "jolokia-name.json"} {
		f.Add([]byte(reply(f, name)))
	}
	for _, body := range hostileJolokia {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var r jolokiaReply
		var err error
		checkAllocs(t, len(body), func() { r, err = parseJolokia(body) })
		if err != nil {
			checkBadReply(t, err, 0)
			return
		}
		checkJolokiaReply(t, r)
	})
}

func FuzzParseJolokiaBulk(f *testing.F) {
	f.Add([]byte(reply(f, "jolokia-bulk.json")), uint8(4))
	f.Add([]byte(reply(f, "jolokia-bulk.json")), uint8(3))
	f.Add([]byte(`{"error_type":"java.lang.Exception","error":"java.lang.Exception : HTTP method post is not allowed according to the installed security policy","status":403}`), uint8(2))
	for _, body := range hostileJolokia {
		f.Add([]byte("["+body+","+body+"]"), uint8(2))
		f.Add([]byte(body), uint8(1))
	}
	f.Fuzz(func(t *testing.T, body []byte, n uint8) {
		var b bulkReply
		var err error
		checkAllocs(t, len(body), func() { b, err = parseJolokiaBulk(body, int(n)) })
		switch {
		case err != nil:
			checkBadReply(t, err, 0)
		case b.whole != nil:
			if b.whole.Status == 200 || len(b.entries) > 0 {
				t.Fatalf("accepted a whole reply %+v with %d entries", *b.whole, len(b.entries))
			}
			checkJolokiaReply(t, *b.whole)
		case len(b.entries) != int(n):
			t.Fatalf("%d entries for %d requests", len(b.entries), n)
		}
		for i, e := range b.entries {
			if e.err != nil {
				checkBadReply(t, e.err, i+1)
				continue
			}
			checkJolokiaReply(t, e.reply)
		}
	})
}

func FuzzParseStats(f *testing.F) {
	for _, name := range []string{"stats-orders.xml", "stats-end.xml"} {
		f.Add([]byte(reply(f, name)))
	}
	named := []string{"brokerName", "<string>" + marker + "</string>", "destinationName", "<string>queue://q</string>"}
	for _, size := range []string{"<long>-5</long>", "<long>abc" + marker + "</long>", "<string>" + marker + "</string>", "<double>NaN</double>", "<long>9223372036854775808</long>"} {
		f.Add([]byte(statsMap(append([]string{"size", size}, named...)...)))
	}
	f.Add([]byte(statsMap("size", "<long>5</long>", "size", "<long>0</long>", marker, "<x>"+marker+"</x>")))
	f.Add([]byte("<map><entry><string>&" + marker + ";</string><long>1</long></entry></map>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		var s destStats
		var err error
		checkAllocs(t, len(body), func() { s, err = parseStats(body) })
		switch {
		case err != nil:
			checkBadReply(t, err, 0)
		case s.End && s != (destStats{End: true}):
			t.Fatalf("the end of a list with figures: %+v", s)
		case math.IsNaN(s.Size) || math.IsInf(s.Size, 0) || s.Size < 0 || s.Size > maxSize || s.Size != math.Trunc(s.Size):
			t.Fatalf("size %v is no size", s.Size)
		}
	})
}

// checkJolokiaReply checks what parseJolokia promises of a reply it accepted.
func checkJolokiaReply(t *testing.T, r jolokiaReply) {
	t.Helper()
	switch {
	case r.Status < 100 || r.Status > 599:
		t.Fatalf("status %d accepted", r.Status)
	case r.Status != 200 && r.Value != 0:
		t.Fatalf("a value with status %d", r.Status)
	case math.IsNaN(r.Value) || math.IsInf(r.Value, 0) || r.Value < 0 || r.Value > maxSize || math.Signbit(r.Value):
		t.Fatalf("value %v accepted", r.Value)
	case r.postRefused && r.Status != 403:
		t.Fatalf("a POST refused with status %d", r.Status)
	}
}

// checkBadReply checks that a parser's error is a *badReply of the tables, for the reply at
// entry of a bulk reply (0 for a reply alone).
func checkBadReply(t *testing.T, err error, entry int) {
	t.Helper()
	var br *badReply
	if !errors.As(err, &br) || err.Error() != br.Error() || int(br.part) >= len(partNames) || int(br.fault) >= len(faultTexts) {
		t.Fatalf("error %q (%T) is not a badReply of the tables", err, err)
	}
	if br.entry != entry {
		t.Fatalf("error %q is about reply %d, want %d", err, br.entry, entry)
	}
	if strings.Contains(err.Error(), marker) {
		t.Fatalf("error %q repeats the reply", err)
	}
}

// checkAllocs fails t when parse allocates more than in proportion to an input of n bytes.
func checkAllocs(t *testing.T, n int, parse func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	parse()
	runtime.ReadMemStats(&after)
	if got, limit := float64(after.TotalAlloc-before.TotalAlloc), 64*float64(n)+256<<10; got > limit {
		t.Errorf("parsing %d bytes allocated %.0f bytes, more than %.0f", n, got, limit)
	}
}
