package activemq

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
)

// jolokiaReply is what matters in Jolokia's answer to a read. Jolokia answers HTTP 200 for
// most failures and puts the outcome in status: 404 for an MBean that does not exist (an
// unknown queue or broker), 403 for a read its policy forbids, 500 for other failures.
type jolokiaReply struct {
	Status    int
	Value     float64 // only when Status is 200
	ErrorType string  // the Java exception's class, when Status is not 200
	Error     string
}

// rawJolokiaReply is one Jolokia reply as sent, before its value is read.
type rawJolokiaReply struct {
	Status    int             `json:"status"`
	Value     json.RawMessage `json:"value"`
	ErrorType string          `json:"error_type"`
	Error     string          `json:"error"`
}

// parseJolokia reads a Jolokia read reply whose value, when the read succeeded, must be a
// number: the queue size.
func parseJolokia(body []byte) (jolokiaReply, error) {
	var raw rawJolokiaReply
	if err := json.Unmarshal(body, &raw); err != nil {
		return jolokiaReply{}, fmt.Errorf("not a Jolokia reply (%w): %.120q", err, body)
	}
	r, err := raw.reply(body)
	if err != nil {
		return jolokiaReply{}, err
	}
	return r, nil
}

// reply checks a raw reply and reads its value. On an error the status is kept: a probe
// needs only that.
func (raw *rawJolokiaReply) reply(body []byte) (jolokiaReply, error) {
	if raw.Status == 0 {
		return jolokiaReply{}, fmt.Errorf("not a Jolokia reply (no status): %.120q", body)
	}
	r := jolokiaReply{Status: raw.Status, ErrorType: raw.ErrorType, Error: raw.Error}
	if r.Status != 200 {
		return r, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw.Value, &n); err != nil {
		return r, fmt.Errorf("the value read is %.60s, not a number: does the URL read an attribute such as QueueSize?", raw.Value)
	}
	v, err := n.Float64()
	if err != nil {
		return r, fmt.Errorf("the value read is %s, not a number", n)
	}
	r.Value = v
	return r, nil
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

// parseJolokiaBulk reads the answer to a bulk request of n requests.
func parseJolokiaBulk(body []byte, n int) (bulkReply, error) {
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '{' {
		return parseWholeReply(body)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return bulkReply{}, fmt.Errorf("not a Jolokia bulk reply (%w): %.120q", err, body)
	}
	if len(raws) != n {
		return bulkReply{}, fmt.Errorf("not a Jolokia bulk reply: %d replies to %d requests", len(raws), n)
	}
	entries := make([]bulkEntry, n)
	for i, b := range raws {
		var raw rawJolokiaReply
		if err := json.Unmarshal(b, &raw); err != nil {
			entries[i].err = fmt.Errorf("not a Jolokia reply (%w): %.120q", err, b)
			continue
		}
		entries[i].reply, entries[i].err = raw.reply(b)
	}
	return bulkReply{entries: entries}, nil
}

// parseWholeReply reads a single reply to a bulk request, which only a refusal may be.
func parseWholeReply(body []byte) (bulkReply, error) {
	r, err := parseJolokia(body)
	if err != nil {
		return bulkReply{}, err
	}
	if r.Status == 200 {
		return bulkReply{}, fmt.Errorf("not a Jolokia bulk reply: one reply, with status 200, to a list of requests: %.120q", body)
	}
	return bulkReply{whole: &r}, nil
}

// destStats is one reply of the statistics plugin to a destination query. A query is
// answered by one reply per destination its name matches, then (when asked for with
// ActiveMQ.Statistics.Destination.List.End.With.Null) an empty reply: End.
type destStats struct {
	End         bool
	Broker      string  // brokerName
	Destination string  // destinationName: queue://name or topic://name
	Size        float64 // size: messages in the destination, QueueSize in JMX
}

// parseStats reads a statistics reply in ActiveMQ's jms-map-xml, XStream's form of a map:
//
//	<map><entry><string>size</string><long>3</long></entry>…</map>
//
// An empty map, <map/>, ends a list. Of the entries only size, brokerName and
// destinationName are kept.
func parseStats(body []byte) (destStats, error) {
	var s destStats
	sized := false
	var sizeErr error
	n, err := walkMap(body, func(name string, value []byte) {
		switch name {
		case "brokerName":
			s.Broker = string(value)
		case "destinationName":
			s.Destination = string(value)
		case "size":
			sized = true
			if s.Size, sizeErr = strconv.ParseFloat(string(value), 64); sizeErr != nil {
				sizeErr = fmt.Errorf("statistics reply with size %q, not a number", value)
			}
		}
	})
	switch {
	case err != nil:
		return destStats{}, fmt.Errorf("statistics reply is not a jms-map-xml map (%w): %.120q", err, body)
	case n == 0:
		return destStats{End: true}, nil
	case !sized:
		return destStats{}, errors.New("statistics reply without size")
	case sizeErr != nil:
		return destStats{}, sizeErr
	}
	return s, nil
}

// walkMap calls fn with the name and the value's text of each entry of a jms-map-xml map,
// and returns how many there were. It reads raw tokens rather than unmarshalling, to
// allocate less: a reply has some twenty entries, and a poll may read hundreds of replies.
// Raw tokens skip the check that end tags match start tags; the walk checks the shape it
// needs.
func walkMap(body []byte, fn func(name string, value []byte)) (int, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	if _, err := startElement(d, "map"); err != nil {
		return 0, err
	}
	var name, value []byte
	for n := 0; ; n++ {
		tok, err := element(d)
		if err != nil {
			return n, err
		}
		if _, end := tok.(xml.EndElement); end {
			return n, nil // </map>
		}
		if se, ok := tok.(xml.StartElement); !ok || se.Name.Local != "entry" {
			return n, fmt.Errorf("want <entry>, got %v", tok)
		}
		if name, err = textElement(d, "string", name[:0]); err != nil {
			return n, fmt.Errorf("entry name: %w", err)
		}
		if value, err = textElement(d, "", value[:0]); err != nil {
			return n, fmt.Errorf("value of %s: %w", name, err)
		}
		if tok, err = element(d); err != nil {
			return n, err
		}
		if _, end := tok.(xml.EndElement); !end {
			return n, fmt.Errorf("entry %s has more than a name and a value", name)
		}
		fn(string(name), value)
	}
}

// element returns the next start or end element, skipping text between elements (the
// indentation), comments and processing instructions.
func element(d *xml.Decoder) (xml.Token, error) {
	for {
		tok, err := d.RawToken()
		if err != nil {
			return nil, err
		}
		switch tok.(type) {
		case xml.StartElement, xml.EndElement:
			return tok, nil
		}
	}
}

// startElement reads the next element, which must open with the given name ("" for any).
func startElement(d *xml.Decoder, name string) (xml.StartElement, error) {
	tok, err := element(d)
	if err != nil {
		return xml.StartElement{}, err
	}
	se, ok := tok.(xml.StartElement)
	if !ok || (name != "" && se.Name.Local != name) {
		return xml.StartElement{}, fmt.Errorf("want <%s>, got %v", cmpOr(name, "a value"), tok)
	}
	return se, nil
}

// textElement reads an element holding only text, such as <long>3</long>, and appends the
// text to buf.
func textElement(d *xml.Decoder, name string, buf []byte) ([]byte, error) {
	se, err := startElement(d, name)
	if err != nil {
		return buf, err
	}
	for {
		tok, err := d.RawToken()
		if err != nil {
			return buf, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			buf = append(buf, t...)
		case xml.EndElement:
			return buf, nil
		case xml.StartElement:
			return buf, fmt.Errorf("<%s> holds an element, <%s>", se.Name.Local, t.Name.Local)
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
