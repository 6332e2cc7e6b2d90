package activemq

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
)

// part names what a fault of a reply is in.
type part uint8

const (
	partReply part = iota
	partBulk
	partStatus
	partValue
	partStats
	partSize
	partBrokerName
	partDestinationName
	partQueueSize
	partEnqueueCount
	partDequeueCount
	partEnqueueEntry
	partDequeueEntry
)

var partNames = [...]string{
	partReply:           "the reply",
	partBulk:            "the bulk reply",
	partStatus:          "status",
	partValue:           "value",
	partStats:           "the statistics reply",
	partSize:            "size",
	partBrokerName:      "brokerName",
	partDestinationName: "destinationName",
	partQueueSize:       "QueueSize",
	partEnqueueCount:    "EnqueueCount",
	partDequeueCount:    "DequeueCount",
	partEnqueueEntry:    "enqueueCount",
	partDequeueEntry:    "dequeueCount",
}

// fault is what is wrong with a part.
type fault uint8

const (
	faultNotJSON fault = iota
	faultNotObject
	faultNotList
	faultMissing
	faultNull
	faultNotNumber
	faultNotStatus
	faultNegative
	faultTooLarge
	faultRepeated
	faultDisagrees
	faultCount
	faultWholeOK
	faultNotXML
	faultBadEntry
	faultNotLong
	faultNotWhole
	faultNotString
)

var faultTexts = [...]string{
	faultNotJSON:   "is not JSON",
	faultNotObject: "is not a JSON object",
	faultNotList:   "is neither a list of replies nor one reply",
	faultMissing:   "is missing",
	faultNull:      "is null",
	faultNotNumber: "is not a number",
	faultNotStatus: "is not an HTTP status code",
	faultNegative:  "is negative",
	faultTooLarge:  "is too large",
	faultRepeated:  "appears twice",
	faultDisagrees: "appears twice with different values",
	faultCount:     "holds another number of replies than requests",
	faultWholeOK:   "is one reply, with status 200, to a list of requests",
	faultNotXML:    "is not a jms-map-xml map",
	faultBadEntry:  "has an entry that is not one <string> name and one value",
	faultNotLong:   "is not a <long> or an <int>",
	faultNotWhole:  "is not a whole number",
	faultNotString: "is not a <string>",
}

// badReply says what is wrong with a reply of the broker, in words of ours. It holds no text
// of the reply, whose bytes come from whatever server the trigger names: its fields are
// numbers, so its message comes from a fixed set of formats.
type badReply struct {
	entry     int // 1-based position of the reply in a bulk reply; 0 for a reply alone
	part      part
	fault     fault
	got, want int // the counts of faultCount
}

func (e *badReply) Error() string {
	s := partNames[e.part] + " " + faultTexts[e.fault]
	if e.fault == faultCount {
		s = partNames[e.part] + " holds " + strconv.Itoa(e.got) + " replies to " + strconv.Itoa(e.want) + " requests"
	}
	if e.entry > 0 {
		return "reply " + strconv.Itoa(e.entry) + ": " + s
	}
	return s
}

// hint adds to an error what a value that is not a number usually means.
func hint(err error) string {
	var br *badReply
	if errors.As(err, &br) && br.part == partValue && (br.fault == faultNotNumber || br.fault == faultNull) {
		return ": does the URL read an attribute such as QueueSize?"
	}
	return ""
}

// maxSize bounds a queue size: QueueSize is a Java long, and a larger figure is no size at
// all.
const maxSize = float64(math.MaxInt64)

// jolokiaReply is what matters in Jolokia's answer to a read. Jolokia answers HTTP 200 for
// most failures and puts the outcome in status: 404 for an MBean that does not exist (an
// unknown queue or broker), 403 for a read its policy forbids, 500 for other failures. Its
// words (error, error_type) are not kept: only whether they refuse the HTTP method POST.
type jolokiaReply struct {
	Status int
	Value  float64 // only when Status is 200: the attribute read, or QueueSize of a counts read
	// Enqueued and Dequeued are EnqueueCount and DequeueCount, of a counts read only.
	Enqueued, Dequeued float64
	postRefused        bool // status 403 for the HTTP method: see refusesPost
}

// countAttributes are the attributes of a queue's MBean that a counts read reads together,
// in one read: Jolokia answers them as one object, such as
// {"QueueSize":3,"EnqueueCount":5,"DequeueCount":2}.
var countAttributes = []string{"QueueSize", "EnqueueCount", "DequeueCount"}

// rawReply is one Jolokia reply's members that matter, as sent.
type rawReply struct {
	status, value, errText json.RawMessage
}

// parseJolokia reads a Jolokia read reply, such as
//
//	{"request":{…},"value":42,"timestamp":1700000000,"status":200}
//
// whose value, when the read succeeded, must be a number from 0 to maxSize: the queue size;
// or, for a counts read, an object of countAttributes, each such a number. A reply that is
// not a JSON object, has no status or a status that is no HTTP status code, has a key it
// reads twice, or a value (or one of its attributes) missing, null, of another type,
// negative or too large, is a *badReply. On a bad value the status is kept: a probe needs
// only that.
func parseJolokia(body []byte, counts bool) (jolokiaReply, error) {
	raw, err := readReply(body)
	if err != nil {
		return jolokiaReply{}, err
	}
	status, err := readStatus(raw.status)
	if err != nil {
		return jolokiaReply{}, err
	}
	r := jolokiaReply{Status: status}
	if status != 200 {
		r.postRefused = status == 403 && refusesPost(raw.errText)
		return r, nil
	}
	if counts {
		r.Value, r.Enqueued, r.Dequeued, err = readCounts(raw.value)
		return r, err
	}
	r.Value, err = readValue(raw.value, partValue)
	return r, err
}

// countParts are the parts of countAttributes, in their order.
var countParts = [...]part{partQueueSize, partEnqueueCount, partDequeueCount}

// readCounts reads the value of a counts read: an object holding each of countAttributes,
// once, as readValue reads a number. Other members are ignored.
func readCounts(raw json.RawMessage) (size, enqueued, dequeued float64, err error) {
	fail := func(p part, why fault) (float64, float64, float64, error) {
		return 0, 0, 0, &badReply{part: p, fault: why}
	}
	switch {
	case raw == nil:
		return fail(partValue, faultMissing)
	case string(raw) == "null":
		return fail(partValue, faultNull)
	case raw[0] != '{':
		return fail(partValue, faultNotObject)
	}
	var members [len(countParts)]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return fail(partValue, faultNotObject)
	}
	for dec.More() {
		key, err := dec.Token()
		var v json.RawMessage
		if err != nil || dec.Decode(&v) != nil { // readReply has checked the syntax: never
			return fail(partValue, faultNotObject)
		}
		for i, name := range countAttributes {
			switch {
			case key != name:
			case members[i] != nil:
				return fail(countParts[i], faultRepeated)
			default:
				members[i] = v
			}
		}
	}
	var figures [len(countParts)]float64
	for i, m := range members {
		if figures[i], err = readValue(m, countParts[i]); err != nil {
			return 0, 0, 0, err
		}
	}
	return figures[0], figures[1], figures[2], nil
}

// readReply reads the members of a reply object that parseJolokia needs.
func readReply(body []byte) (rawReply, error) {
	fail := func(why fault) (rawReply, error) { return rawReply{}, &badReply{part: partReply, fault: why} }
	dec := json.NewDecoder(bytes.NewReader(body))
	t, err := dec.Token()
	switch {
	case err != nil:
		return fail(faultNotJSON)
	case t != json.Delim('{'):
		if !json.Valid(body) {
			return fail(faultNotJSON)
		}
		return fail(faultNotObject)
	}
	var raw rawReply
	for dec.More() {
		key, err := dec.Token()
		var v json.RawMessage
		if err != nil || dec.Decode(&v) != nil {
			return fail(faultNotJSON)
		}
		switch key {
		case "status":
			if raw.status != nil {
				return rawReply{}, &badReply{part: partStatus, fault: faultRepeated}
			}
			raw.status = v
		case "value":
			if raw.value != nil {
				return rawReply{}, &badReply{part: partValue, fault: faultRepeated}
			}
			raw.value = v
		case "error":
			raw.errText = v
		}
	}
	if _, err := dec.Token(); err != nil { // }
		return fail(faultNotJSON)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail(faultNotJSON)
	}
	return raw, nil
}

// readStatus reads a reply's status: a whole number from 100 to 599.
func readStatus(raw json.RawMessage) (int, error) {
	if raw == nil || string(raw) == "null" {
		return 0, &badReply{part: partStatus, fault: faultMissing}
	}
	n, err := strconv.Atoi(string(raw))
	if err != nil || n < 100 || n > 599 {
		return 0, &badReply{part: partStatus, fault: faultNotStatus}
	}
	return n, nil
}

// readValue reads the value of a successful read, or one of its attributes (p): a number from
// 0 to maxSize.
func readValue(raw json.RawMessage, p part) (float64, error) {
	fail := func(why fault) (float64, error) { return 0, &badReply{part: p, fault: why} }
	switch {
	case raw == nil:
		return fail(faultMissing)
	case string(raw) == "null":
		return fail(faultNull)
	case raw[0] != '-' && (raw[0] < '0' || raw[0] > '9'):
		return fail(faultNotNumber)
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		return fail(faultNotNumber)
	case v < 0: // -Inf included
		return fail(faultNegative)
	case v > maxSize: // +Inf included
		return fail(faultTooLarge)
	}
	return v + 0, nil // + 0 turns -0 into 0
}

// refusesPost reports whether the error of a reply with status 403 refuses its request for
// the HTTP method: an access policy whose <http> section does not list post answers each
// request of a bulk request with "HTTP method post is not allowed according to the
// installed security policy". The words are read, never repeated.
func refusesPost(errText json.RawMessage) bool {
	var s string
	return json.Unmarshal(errText, &s) == nil && strings.Contains(strings.ToLower(s), "http method post")
}

// bulkReply is Jolokia's answer to a bulk request: one entry per request, in order, or,
// when the agent refused the request as a whole before reading it (an Origin its policy
// does not allow, say), one reply for all of them.
type bulkReply struct {
	entries []bulkEntry
	whole   *jolokiaReply
}

// bulkEntry is the reply to one request of a bulk request. err is set when the reply is
// malformed or its value is not a number; reply.Status is then still set if the reply had
// one.
type bulkEntry struct {
	reply jolokiaReply
	err   error
}

// parseJolokiaBulk reads the answer to a bulk request of len(counts) requests, counts[i]
// telling whether request i is a counts read: a list of one reply per request (each read as
// parseJolokia reads one; a bad one fails its read only), or one reply that refuses them
// all. Anything else, a list of another length included, is a *badReply.
func parseJolokiaBulk(body []byte, counts []bool) (bulkReply, error) {
	n := len(counts)
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '{' {
		return parseWholeReply(body)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		why := faultNotList
		if !json.Valid(body) {
			why = faultNotJSON
		}
		return bulkReply{}, &badReply{part: partBulk, fault: why}
	}
	if len(raws) != n {
		return bulkReply{}, &badReply{part: partBulk, fault: faultCount, got: len(raws), want: n}
	}
	entries := make([]bulkEntry, n)
	for i, b := range raws {
		entries[i].reply, entries[i].err = parseJolokia(b, counts[i])
		var br *badReply
		if errors.As(entries[i].err, &br) {
			br.entry = i + 1
		}
	}
	return bulkReply{entries: entries}, nil
}

// parseWholeReply reads a single reply to a bulk request, which only a refusal may be.
func parseWholeReply(body []byte) (bulkReply, error) {
	r, err := parseJolokia(body, false) // a refusal has no value to read
	if err != nil {
		return bulkReply{}, err
	}
	if r.Status == 200 {
		return bulkReply{}, &badReply{part: partBulk, fault: faultWholeOK}
	}
	return bulkReply{whole: &r}, nil
}
