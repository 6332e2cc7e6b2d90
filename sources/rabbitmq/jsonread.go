package rabbitmq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// field names a part of a queue listing, for listingError: a JSON key of the management
// API's answer, or the answer as a whole.
type field uint8

const (
	fieldAnswer field = iota
	fieldItems
	fieldPageCount
	fieldItemCount
	fieldPage
	fieldName
	fieldState
	fieldMessages
	fieldReady
	fieldMessageStats
	fieldPublishDetails
	fieldRate
	fieldPublish
	fieldAck
	fieldDeliverNoAck
	fieldGetNoAck
)

// fieldNames are the JSON keys of the fields, which listingError prints.
var fieldNames = [...]string{
	fieldAnswer:         "the answer",
	fieldItems:          "items",
	fieldPageCount:      "page_count",
	fieldItemCount:      "item_count",
	fieldPage:           "page",
	fieldName:           "name",
	fieldState:          "state",
	fieldMessages:       "messages",
	fieldReady:          "messages_ready",
	fieldMessageStats:   "message_stats",
	fieldPublishDetails: "publish_details",
	fieldRate:           "rate",
	fieldPublish:        "publish",
	fieldAck:            "ack",
	fieldDeliverNoAck:   "deliver_no_ack",
	fieldGetNoAck:       "get_no_ack",
}

// fault is what is wrong with a field.
type fault uint8

const (
	faultNotJSON fault = iota
	faultNotObject
	faultNotArray
	faultMissing
	faultNotString
	faultEmpty
	faultNotNumber
	faultNotWhole
	faultNegative
	faultTooLarge
	faultRepeated
	faultDisagrees
	faultTooManyPages
	faultItemCount
	faultOtherPage
	faultTooManyItems
	faultItemsBeyondPages
)

var faultTexts = [...]string{
	faultNotJSON:          "is not JSON",
	faultNotObject:        "is not a JSON object",
	faultNotArray:         "is not a JSON array",
	faultMissing:          "is missing",
	faultNotString:        "is not a string",
	faultEmpty:            "is empty",
	faultNotNumber:        "is not a number",
	faultNotWhole:         "is not a whole number",
	faultNegative:         "is negative",
	faultTooLarge:         "is too large",
	faultRepeated:         "appears twice",
	faultDisagrees:        "repeats an earlier item's name with other figures",
	faultTooManyPages:     fmt.Sprintf("is above %d, the most pages qscale reads of a listing", maxPages),
	faultItemCount:        "does not match the number of items",
	faultOtherPage:        "is not the page asked for",
	faultTooManyItems:     "holds more items than the page size asked for",
	faultItemsBeyondPages: "does not count the page of the items listed",
}

// listingError says what is wrong with a page of a queue listing, in words of ours. It holds
// no text of the answer, whose bytes come from whatever server the host parameter names:
// its fields are numbers, so its message comes from a fixed set of formats.
type listingError struct {
	item  int // 1-based position in items of the item concerned; 0 for the page itself
	field field
	fault fault
}

func (e *listingError) Error() string {
	s := fieldNames[e.field] + " " + faultTexts[e.fault]
	if e.item > 0 {
		return "item " + strconv.Itoa(e.item) + ": " + s
	}
	return s
}

// maxCount bounds every count and rate: RabbitMQ keeps them in 64-bit integers, and a
// larger figure is no figure at all. Under this bound a sum over the most queues a listing
// may hold (maxPages pages of maxPageSize) stays far from overflowing.
const maxCount = float64(math.MaxInt64)

// jsonReader reads one JSON value strictly, token by token: a syntax error, a value of the
// wrong type or a key read twice is a listingError, never a value of 0. The item being
// read is kept for errors.
type jsonReader struct {
	dec  *json.Decoder
	item int
}

func newJSONReader(body []byte) *jsonReader {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	return &jsonReader{dec: dec}
}

func (r *jsonReader) fail(f field, why fault) error {
	return &listingError{item: r.item, field: f, fault: why}
}

// token returns the next token; a syntax error fails the whole answer, without the
// decoder's message, which quotes the answer.
func (r *jsonReader) token() (json.Token, error) {
	t, err := r.dec.Token()
	if err != nil {
		return nil, &listingError{field: fieldAnswer, fault: faultNotJSON}
	}
	return t, nil
}

// skip consumes the rest of the value that t opens, when t is an object's or an array's
// opening delimiter.
func (r *jsonReader) skip(t json.Token) error {
	if t != json.Delim('{') && t != json.Delim('[') {
		return nil
	}
	for depth := 1; depth > 0; {
		next, err := r.token()
		if err != nil {
			return err
		}
		switch next {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

// value reads the next value whole: a scalar's token, or the opening delimiter of an
// object or array, which it skips.
func (r *jsonReader) value() (json.Token, error) {
	t, err := r.token()
	if err != nil {
		return nil, err
	}
	return t, r.skip(t)
}

// end checks that nothing follows the value read.
func (r *jsonReader) end() error {
	if _, err := r.dec.Token(); !errors.Is(err, io.EOF) {
		return &listingError{field: fieldAnswer, fault: faultNotJSON}
	}
	return nil
}

// object reads an object, calling each for the members named by one of keys, and skipping
// the others; each reads the member's value. A key of keys that appears twice is an error:
// which of its values would be meant? A null object counts as absent (present is false).
func (r *jsonReader) object(of field, keys []field, each func(f field) error) (present bool, err error) {
	t, err := r.token()
	if err != nil || t == nil {
		return false, err
	}
	return r.objectFrom(t, of, keys, each)
}

// proplist reads an object as object does, and takes an empty array for an empty object:
// RabbitMQ writes an Erlang property list that is empty as [], such as the message_stats
// of a queue whose only statistics are of no column asked for.
func (r *jsonReader) proplist(of field, keys []field, each func(f field) error) (present bool, err error) {
	t, err := r.token()
	if err != nil || t == nil {
		return false, err
	}
	if t == json.Delim('[') {
		if !r.dec.More() {
			_, err = r.token() // ]
			return true, err
		}
		if err := r.skip(t); err != nil {
			return true, err
		}
		return true, r.fail(of, faultNotObject)
	}
	return r.objectFrom(t, of, keys, each)
}

// objectFrom reads the rest of an object whose first token, t, has been read.
func (r *jsonReader) objectFrom(t json.Token, of field, keys []field, each func(f field) error) (present bool, err error) {
	if t != json.Delim('{') {
		if err := r.skip(t); err != nil {
			return true, err
		}
		return true, r.fail(of, faultNotObject)
	}
	var seen uint64
	for r.dec.More() {
		key, err := r.token()
		if err != nil {
			return true, err
		}
		f, ok := lookup(keys, key)
		if !ok {
			if _, err := r.value(); err != nil {
				return true, err
			}
			continue
		}
		if seen&(1<<f) != 0 {
			return true, r.fail(f, faultRepeated)
		}
		seen |= 1 << f
		if err := each(f); err != nil {
			return true, err
		}
	}
	_, err = r.token() // }
	return true, err
}

// lookup returns the field of keys whose JSON key is key.
func lookup(keys []field, key json.Token) (field, bool) {
	for _, f := range keys {
		if key == fieldNames[f] {
			return f, true
		}
	}
	return 0, false
}

// array reads an array, calling each to read every element. A null array counts as absent.
func (r *jsonReader) array(of field, each func() error) (present bool, err error) {
	t, err := r.token()
	if err != nil || t == nil {
		return false, err
	}
	if t != json.Delim('[') {
		if err := r.skip(t); err != nil {
			return true, err
		}
		return true, r.fail(of, faultNotArray)
	}
	for r.dec.More() {
		if err := each(); err != nil {
			return true, err
		}
	}
	_, err = r.token() // ]
	return true, err
}

// number reads a number from 0 to maxCount, and a whole one when whole is set. A null
// counts as absent.
func (r *jsonReader) number(f field, whole bool) (v float64, present bool, err error) {
	t, err := r.value()
	if err != nil || t == nil {
		return 0, false, err
	}
	n, ok := t.(json.Number)
	if !ok {
		return 0, true, r.fail(f, faultNotNumber)
	}
	v, perr := strconv.ParseFloat(string(n), 64)
	switch {
	case perr != nil && !errors.Is(perr, strconv.ErrRange):
		return 0, true, r.fail(f, faultNotNumber)
	case v < 0: // -Inf included
		return 0, true, r.fail(f, faultNegative)
	case v > maxCount: // +Inf included
		return 0, true, r.fail(f, faultTooLarge)
	case whole && v != math.Trunc(v):
		return 0, true, r.fail(f, faultNotWhole)
	}
	return v + 0, true, nil // + 0 turns -0 into 0
}

// str reads a string. A null counts as absent.
func (r *jsonReader) str(f field) (s string, present bool, err error) {
	t, err := r.value()
	if err != nil || t == nil {
		return "", false, err
	}
	s, ok := t.(string)
	if !ok {
		return "", true, r.fail(f, faultNotString)
	}
	return s, true, nil
}
