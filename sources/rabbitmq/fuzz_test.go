package rabbitmq

import (
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
)

// FuzzParsePage feeds parsePage any answer to any page request. Whatever the answer, the
// parser does not panic, allocates in proportion to the answer, and either returns figures
// that are finite and not negative, or a *listingError, whose text, made of numbers and
// fixed words, cannot repeat the answer.
func FuzzParsePage(f *testing.F) {
	for _, name := range []string{"depth-page.json", "depth-first-of-two-pages.json", "depth-no-match.json", "depth-regex.json",
		"rates-page.json", "rates-publishing.json", "rates-dead-lettered.json", "counts-page.json"} {
		body := answer(f, name)
		f.Add([]byte(body), uint16(1), uint16(100), strings.HasPrefix(name, "rates"), false)
		f.Add([]byte(body), uint16(1), uint16(100), true, true)
	}
	for _, body := range []string{
		depthPage(`{"name":"q","state":"` + marker + `","messages":"` + marker + `","messages_ready":1}`),
		depthPage(`{"name":"q","messages":-5,"messages_ready":1},{"name":"q","messages":5,"messages_ready":5}`),
		depthPage(`{"name":"` + marker + `","messages":1e400,"messages_ready":0.5,"messages":1}`),
		`{"items":[],"page_count":1000000000,"` + marker + `":[[[[{}]]]]}`,
		`{"items":[{"name":"q","message_stats":{"publish_details":{"rate":-1e308}}}],"page_count":-1}`,
		`{"items":[{"name":"q","message_stats":{"publish":1e308,"ack":1,"ack":2,"deliver_no_ack":-0,"get_no_ack":"` + marker + `"}}],"page_count":1}`,
		`{"items":[{"name":"q","message_stats":[]},{"name":"r","message_stats":[[]]},{"name":"s","message_stats":{"ack":1}}],"page_count":1}`,
		`<html><title>` + marker + `</title></html>`,
		`{"items":[` + strings.Repeat(`{"name":"a","messages":1,"messages_ready":1},`, 20) + `{}],"page_count":1,"item_count":21}`,
	} {
		f.Add([]byte(body), uint16(1), uint16(500), false, false)
		f.Add([]byte(body), uint16(2), uint16(1), true, false)
		f.Add([]byte(body), uint16(1), uint16(500), true, true)
	}
	f.Fuzz(func(t *testing.T, body []byte, number, size uint16, rates, counts bool) {
		req := pageRequest{number: 1 + int(number)%maxPages, size: 1 + int(size)%maxPageSize, rates: rates, counts: rates && counts}
		var pg listedPage
		var err error
		allocated := allocatedBy(func() { pg, err = parsePage(body, req) })
		if limit := 64*uint64(len(body)) + 256<<10; allocated > limit {
			t.Errorf("parsing %d bytes allocated %d bytes, more than %d", len(body), allocated, limit)
		}
		if err != nil {
			var le *listingError
			if !errors.As(err, &le) || err.Error() != le.Error() || int(le.field) >= len(fieldNames) || int(le.fault) >= len(faultTexts) {
				t.Fatalf("error %q (%T) is not a listingError of the tables", err, err)
			}
			if strings.Contains(err.Error(), marker) {
				t.Fatalf("error %q repeats the answer", err)
			}
			return
		}
		checkPage(t, pg, req)
	})
}

// checkPage checks what parsePage promises of a page it accepted.
func checkPage(t *testing.T, pg listedPage, req pageRequest) {
	t.Helper()
	if pg.pageCount < 0 || pg.pageCount > maxPages || len(pg.queues) > req.size {
		t.Fatalf("page_count %d with %d queues accepted for %+v", pg.pageCount, len(pg.queues), req)
	}
	names := map[string]bool{}
	for _, q := range pg.queues {
		for _, v := range []float64{q.Messages, q.Ready, q.PublishRate, q.Published, q.Consumed} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 3*maxCount || math.Signbit(v) {
				t.Fatalf("queue %+v has a figure that is no count", q)
			}
		}
		checkCounted(t, q, req)
		if q.Name == "" || names[q.Name] {
			t.Fatalf("queue %+v: empty or repeated name", q)
		}
		names[q.Name] = true
	}
}

// checkCounted checks that counts were read exactly when asked for.
func checkCounted(t *testing.T, q queueStats, req pageRequest) {
	t.Helper()
	if q.counted != req.counts || (!req.counts && q.Published+q.Consumed != 0) {
		t.Fatalf("queue %+v: counts read, or not, against %+v", q, req)
	}
}

// allocatedBy returns the bytes that fn allocates on the heap.
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
