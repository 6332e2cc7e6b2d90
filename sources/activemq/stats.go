package activemq

import (
	"bytes"
	"encoding/xml"
	"errors"
	"slices"
	"strconv"
)

// destStats is one reply of the statistics plugin to a destination query. A query is
// answered by one reply per destination its name matches, then (when asked for with
// ActiveMQ.Statistics.Destination.List.End.With.Null) an empty reply: End.
type destStats struct {
	End         bool
	Broker      string  // brokerName
	Destination string  // destinationName: queue://name or topic://name
	Size        float64 // size: messages in the destination, QueueSize in JMX
	// Enqueued and Dequeued are enqueueCount and dequeueCount (EnqueueCount and DequeueCount
	// in JMX), read only when asked for; countsErr says why they could not be.
	Enqueued, Dequeued float64
	countsErr          error
}

// statsNames are the entries of a statistics reply that parseStats reads: the first three
// always, the counts when asked for.
var statsNames = [...]string{"size", "brokerName", "destinationName", "enqueueCount", "dequeueCount"}

var statsParts = [len(statsNames)]part{partSize, partBrokerName, partDestinationName, partEnqueueEntry, partDequeueEntry}

// statsEntry is one entry of a statistics reply: its name, the element its value is in
// (long, string, …) and the value's text.
type statsEntry struct {
	name, kind string
	value      []byte
}

// parseStats reads a statistics reply in ActiveMQ's jms-map-xml, XStream's form of a map:
//
//	<map><entry><string>size</string><long>3</long></entry>…</map>
//
// An empty map, <map/>, ends a list. Of the entries only size, brokerName and
// destinationName are read, and with counts enqueueCount and dequeueCount, and each must be
// there: size and the counts a <long> (or <int>) from 0 to maxSize, the names <string>s. An
// entry read twice with different values, a reply that is not such a map, or an entry
// missing or of another type, is a *badReply: the error, or for a count s.countsErr, so
// that a reply whose counts are bad still serves the triggers that read only its size.
func parseStats(body []byte, counts bool) (s destStats, err error) {
	var (
		found     [len(statsNames)]*statsEntry // the first of each
		disagrees [len(statsNames)]bool
	)
	read := len(statsNames)
	if !counts {
		read = 3
	}
	n, err := walkMap(body, func(e *statsEntry) {
		i := slices.Index(statsNames[:read], e.name)
		switch {
		case i < 0:
		case found[i] == nil:
			found[i] = &statsEntry{name: e.name, kind: e.kind, value: bytes.Clone(e.value)}
		case found[i].kind != e.kind || !bytes.Equal(found[i].value, e.value):
			disagrees[i] = true
		}
	})
	switch {
	case err != nil:
		return destStats{}, err
	case n == 0:
		return destStats{End: true}, nil
	}
	if err := statsEntries(&s, found, disagrees); err != nil {
		return destStats{}, err
	}
	if counts {
		s.statsCounts(found, disagrees)
	}
	return s, nil
}

// statsEntries reads size, brokerName and destinationName into s.
func statsEntries(s *destStats, found [len(statsNames)]*statsEntry, disagrees [len(statsNames)]bool) error {
	for i := range 3 {
		if disagrees[i] {
			return &badReply{part: statsParts[i], fault: faultDisagrees}
		}
	}
	var err error
	if s.Size, err = statsLong(found[0], partSize); err != nil {
		return err
	}
	if s.Broker, err = statsString(found[1], partBrokerName); err != nil {
		return err
	}
	s.Destination, err = statsString(found[2], partDestinationName)
	return err
}

// statsCounts reads enqueueCount and dequeueCount into s, or sets s.countsErr.
func (s *destStats) statsCounts(found [len(statsNames)]*statsEntry, disagrees [len(statsNames)]bool) {
	var figures [2]float64
	for j := range figures {
		i := 3 + j
		if disagrees[i] {
			s.countsErr = &badReply{part: statsParts[i], fault: faultDisagrees}
			return
		}
		if figures[j], s.countsErr = statsLong(found[i], statsParts[i]); s.countsErr != nil {
			return
		}
	}
	s.Enqueued, s.Dequeued = figures[0], figures[1]
}

// sameFigures reports whether two replies for one queue give the same figures.
func (s destStats) sameFigures(o destStats) bool {
	s.countsErr, o.countsErr = nil, nil
	return s == o
}

// statsLong reads an entry that holds a count (p: size, enqueueCount, …): a whole number from
// 0 to maxSize, in a <long> or an <int>.
func statsLong(e *statsEntry, p part) (float64, error) {
	fail := func(why fault) (float64, error) { return 0, &badReply{part: p, fault: why} }
	switch {
	case e == nil:
		return fail(faultMissing)
	case e.kind != "long" && e.kind != "int":
		return fail(faultNotLong)
	}
	n, err := strconv.ParseInt(string(e.value), 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && len(e.value) > 0 && e.value[0] == '-':
		return fail(faultNegative)
	case errors.Is(err, strconv.ErrRange):
		return fail(faultTooLarge)
	case err != nil:
		return fail(faultNotWhole)
	case n < 0:
		return fail(faultNegative)
	}
	return float64(n), nil
}

// statsString reads a name entry: a <string>.
func statsString(e *statsEntry, p part) (string, error) {
	switch {
	case e == nil:
		return "", &badReply{part: p, fault: faultMissing}
	case e.kind != "string":
		return "", &badReply{part: p, fault: faultNotString}
	}
	return string(e.value), nil
}

// walkMap calls fn with each entry of a jms-map-xml map, and returns how many there were.
// The entry and its value's buffer are reused: fn copies what it keeps. It reads raw tokens
// rather than unmarshalling, to allocate less: a reply has some twenty entries, and a poll
// may read hundreds of replies. Raw tokens skip the check that end tags match start tags;
// the walk checks the shape it needs. Its errors are *badReply: the XML decoder's own quote
// the reply.
func walkMap(body []byte, fn func(e *statsEntry)) (int, error) {
	notXML := &badReply{part: partStats, fault: faultNotXML}
	badEntry := &badReply{part: partStats, fault: faultBadEntry}
	d := xml.NewDecoder(bytes.NewReader(body))
	if se, err := startElement(d); err != nil || se.Name.Local != "map" {
		return 0, notXML
	}
	var e statsEntry
	for n := 0; ; n++ {
		tok, err := element(d)
		if err != nil {
			return n, notXML
		}
		if _, end := tok.(xml.EndElement); end {
			return n, nil // </map>
		}
		if se, ok := tok.(xml.StartElement); !ok || se.Name.Local != "entry" {
			return n, badEntry
		}
		kind, name, err := textElement(d, e.value[:0])
		if err != nil || kind != "string" {
			return n, badEntry
		}
		e.name = string(name)
		if e.kind, e.value, err = textElement(d, name[:0]); err != nil {
			return n, badEntry
		}
		if tok, err = element(d); err != nil {
			return n, notXML
		}
		if _, end := tok.(xml.EndElement); !end {
			return n, badEntry
		}
		fn(&e)
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

// startElement reads the next element, which must be a start element.
func startElement(d *xml.Decoder) (xml.StartElement, error) {
	tok, err := element(d)
	if err != nil {
		return xml.StartElement{}, err
	}
	se, ok := tok.(xml.StartElement)
	if !ok {
		return xml.StartElement{}, errors.New("not a start element")
	}
	return se, nil
}

// textElement reads an element holding only text, such as <long>3</long>, and returns its
// name and its text appended to buf.
func textElement(d *xml.Decoder, buf []byte) (string, []byte, error) {
	se, err := startElement(d)
	if err != nil {
		return "", buf, err
	}
	for {
		tok, err := d.RawToken()
		if err != nil {
			return "", buf, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			buf = append(buf, t...)
		case xml.EndElement:
			return se.Name.Local, buf, nil
		case xml.StartElement:
			return "", buf, errors.New("an element holds an element")
		}
	}
}
