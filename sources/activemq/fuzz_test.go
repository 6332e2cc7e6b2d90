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
	`{"status":200,"value":{"QueueSize":3,"EnqueueCount":"` + marker + `","DequeueCount":-1,"QueueSize":4}}`,
	`{"status":200,"value":{"QueueSize":null,"EnqueueCount":1e400,"` + marker + `":{"DequeueCount":1}}}`,
}

func FuzzParseJolokia(f *testing.F) {
	for _, name := range []string{"jolokia-size.json", "jolokia-missing.json", "jolokia-name.json", "jolokia-counts.json"} {
		f.Add([]byte(reply(f, name)), name == "jolokia-counts.json")
	}
	for _, body := range hostileJolokia {
		f.Add([]byte(body), false)
		f.Add([]byte(body), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, counts bool) {
		var r jolokiaReply
		var err error
		checkAllocs(t, len(body), func() { r, err = parseJolokia(body, counts) })
		if err != nil {
			checkBadReply(t, err, 0)
			return
		}
		checkJolokiaReply(t, r, counts)
	})
}

// FuzzParseJolokiaBulk reads any answer to a bulk request of n reads, those whose bit is set
// in counted (the first 8) being counts reads.
func FuzzParseJolokiaBulk(f *testing.F) {
	f.Add([]byte(reply(f, "jolokia-bulk.json")), uint8(4), uint8(0))
	f.Add([]byte(reply(f, "jolokia-bulk.json")), uint8(3), uint8(0))
	f.Add([]byte(reply(f, "jolokia-bulk-counts.json")), uint8(3), uint8(0b11))
	f.Add([]byte(`{"error_type":"java.lang.Exception","error":"java.lang.Exception : HTTP method post is not allowed according to the installed security policy","status":403}`), uint8(2), uint8(1))
	for _, body := range hostileJolokia {
		f.Add([]byte("["+body+","+body+"]"), uint8(2), uint8(0b10))
		f.Add([]byte(body), uint8(1), uint8(1))
	}
	f.Fuzz(func(t *testing.T, body []byte, n, counted uint8) {
		counts := make([]bool, n)
		for i := range counts {
			counts[i] = i < 8 && counted&(1<<i) != 0
		}
		var b bulkReply
		var err error
		checkAllocs(t, len(body), func() { b, err = parseJolokiaBulk(body, counts) })
		switch {
		case err != nil:
			checkBadReply(t, err, 0)
		case b.whole != nil:
			if b.whole.Status == 200 || len(b.entries) > 0 {
				t.Fatalf("accepted a whole reply %+v with %d entries", *b.whole, len(b.entries))
			}
			checkJolokiaReply(t, *b.whole, false)
		case len(b.entries) != int(n):
			t.Fatalf("%d entries for %d requests", len(b.entries), n)
		}
		for i, e := range b.entries {
			if e.err != nil {
				checkBadReply(t, e.err, i+1)
				continue
			}
			checkJolokiaReply(t, e.reply, counts[i])
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
	sized := append([]string{"size", "<long>1</long>"}, named...)
	for _, count := range []string{"<long>-5</long>", "<string>" + marker + "</string>", "<long>9223372036854775808</long>", "<int>7</int>"} {
		f.Add([]byte(statsMap(append([]string{"enqueueCount", count, "dequeueCount", "<long>2</long>"}, sized...)...)))
		f.Add([]byte(statsMap(append([]string{"dequeueCount", count, "dequeueCount", "<long>2</long>"}, sized...)...)))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, counts := range []bool{false, true} {
			var s destStats
			var err error
			checkAllocs(t, len(body), func() { s, err = parseStats(body, counts) })
			checkStats(t, s, err, counts)
		}
	})
}

// checkStats checks what parseStats promises of a reply, read with counts or not.
func checkStats(t *testing.T, s destStats, err error, counts bool) {
	t.Helper()
	switch {
	case err != nil:
		checkBadReply(t, err, 0)
	case s.End && s != (destStats{End: true}):
		t.Fatalf("the end of a list with figures: %+v", s)
	case !counts && (s.Enqueued+s.Dequeued != 0 || s.countsErr != nil):
		t.Fatalf("counts read without being asked for: %+v", s)
	case s.countsErr != nil:
		checkBadReply(t, s.countsErr, 0)
		if s.Enqueued+s.Dequeued != 0 {
			t.Fatalf("counts %+v with an error", s)
		}
	}
	for _, v := range []float64{s.Size, s.Enqueued, s.Dequeued} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > maxSize || v != math.Trunc(v) {
			t.Fatalf("%v is no count (%+v)", v, s)
		}
	}
}

// checkJolokiaReply checks what parseJolokia promises of a reply it accepted, to a counts
// read or not.
func checkJolokiaReply(t *testing.T, r jolokiaReply, counts bool) {
	t.Helper()
	switch {
	case r.Status < 100 || r.Status > 599:
		t.Fatalf("status %d accepted", r.Status)
	case r.Status != 200 && r.Value+r.Enqueued+r.Dequeued != 0:
		t.Fatalf("a value with status %d", r.Status)
	case !counts && r.Enqueued+r.Dequeued != 0:
		t.Fatalf("counts %+v read without being asked for", r)
	case r.postRefused && r.Status != 403:
		t.Fatalf("a POST refused with status %d", r.Status)
	}
	for _, v := range []float64{r.Value, r.Enqueued, r.Dequeued} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > maxSize || math.Signbit(v) {
			t.Fatalf("value %v accepted (%+v)", v, r)
		}
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
