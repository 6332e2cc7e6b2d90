package rabbitmq

import (
	"slices"
)

// maxPageBytes bounds the answer to one page request. A page holds at most maxPageSize
// queues; with the longest name RabbitMQ allows (255 bytes, which JSON may escape to six
// bytes each) and its figures, an item takes under 1.7 KB, a full page under 1 MiB. Twice
// that leaves room for fields a newer broker may add; an answer above it is an error, never
// a listing cut short.
const maxPageBytes = 2 << 20

// pageRequest is what one page request asked for.
type pageRequest struct {
	number int  // 1-based
	size   int  // page_size
	rates  bool // the statistics listing (name and publish rate), else the depth listing
	counts bool // the statistics listing with the message counts (see messageStats)
}

// listedPage is one page of /api/queues/{vhost}, checked.
type listedPage struct {
	queues    []queueStats
	pageCount int
}

// queueStates are the states the management API gives a queue; a queue listed without
// figures is reported with its state when it is one of these, as "unknown" otherwise.
var queueStates = []string{"running", "idle", "flow", "down", "crashed", "stopped", "minority", "terminated"}

var (
	pageKeys  = []field{fieldItems, fieldPageCount, fieldItemCount, fieldPage}
	depthKeys = []field{fieldName, fieldState, fieldMessages, fieldReady}
	rateKeys  = []field{fieldName, fieldMessageStats}
	statKeys  = []field{fieldPublishDetails}
	countKeys = []field{fieldPublishDetails, fieldPublish, fieldAck, fieldDeliverNoAck, fieldGetNoAck}
)

// parsePage reads the answer to req: a page of a queue listing, as the management API
// sends it:
//
//	{"items":[{"name":"orders","state":"running","messages":5,"messages_ready":3}, …],
//	 "page":1,"page_count":1,"item_count":1, …}
//
// or, for the statistics listing, items such as
// {"name":"orders","message_stats":{"publish_details":{"rate":2.5}}}, with the counts of
// messageStats when asked for. Nothing in it is taken on trust: a field missing or of the
// wrong type, a negative or absurd figure, a page other than the one asked for, or the same
// queue twice with other figures is a *listingError. Only these absences mean something: a
// queue without statistics has no message_stats (its rate and counts are 0), the statistics
// RabbitMQ keeps in groups are absent as a group (see messageStats), and a queue whose
// replicas are down is listed without figures (it is marked unreadable, and reading it is an
// error).
func parsePage(body []byte, req pageRequest) (listedPage, error) {
	r := newJSONReader(body)
	var (
		pg                listedPage
		n                 pageCounts
		itemCount, pageNo float64
	)
	present, err := r.object(fieldAnswer, pageKeys, func(f field) error {
		var err error
		switch f {
		case fieldItems:
			n.items, err = r.array(fieldItems, func() error {
				r.item++
				q, err := r.queue(req)
				pg.queues = append(pg.queues, q)
				return err
			})
			r.item = 0
		case fieldPageCount:
			var pc float64
			pc, n.pageCount, err = r.number(f, true)
			pg.pageCount = int(min(pc, maxPages+1))
		case fieldItemCount:
			itemCount, n.itemCount, err = r.number(f, true)
		case fieldPage:
			pageNo, n.page, err = r.number(f, true)
		}
		return err
	})
	switch {
	case err != nil:
		return listedPage{}, err
	case !present:
		return listedPage{}, &listingError{field: fieldAnswer, fault: faultNotObject}
	}
	if err := r.end(); err != nil {
		return listedPage{}, err
	}
	if err := pg.check(req, n, itemCount, pageNo); err != nil {
		return listedPage{}, err
	}
	return pg, pg.dedup()
}

// pageCounts records which fields of a page were present.
type pageCounts struct{ items, pageCount, itemCount, page bool }

// check checks that the page is the one asked for and that its counts agree. Of the counts,
// only page_count is required: the listing is read until it.
func (pg *listedPage) check(req pageRequest, has pageCounts, itemCount, pageNo float64) error {
	fail := func(f field, why fault) error { return &listingError{field: f, fault: why} }
	n := len(pg.queues)
	switch {
	case !has.items:
		return fail(fieldItems, faultMissing)
	case !has.pageCount:
		return fail(fieldPageCount, faultMissing)
	case pg.pageCount > maxPages:
		return fail(fieldPageCount, faultTooManyPages)
	case n > 0 && req.number > pg.pageCount:
		return fail(fieldPageCount, faultItemsBeyondPages)
	case n > req.size:
		return fail(fieldItems, faultTooManyItems)
	case has.itemCount && itemCount != float64(n):
		return fail(fieldItemCount, faultItemCount)
	case has.page && pageNo != float64(req.number):
		return fail(fieldPage, faultOtherPage)
	}
	return nil
}

// dedup drops a queue listed twice on the page with the same figures; twice with other
// figures is an error, for which of them is right?
func (pg *listedPage) dedup() error {
	seen := make(map[string]int, len(pg.queues))
	kept := pg.queues[:0]
	for i, q := range pg.queues {
		j, ok := seen[q.Name]
		switch {
		case !ok:
			seen[q.Name] = len(kept)
			kept = append(kept, q)
		case kept[j] != q:
			return &listingError{item: i + 1, field: fieldName, fault: faultDisagrees}
		}
	}
	pg.queues = kept
	return nil
}

// queue reads one item of a page.
func (r *jsonReader) queue(req pageRequest) (queueStats, error) {
	var (
		q            queueStats
		named        bool
		state        string
		depth, ready bool
	)
	q.counted = req.rates && req.counts
	present, err := r.object(fieldItems, req.itemKeys(), func(f field) error {
		var err error
		switch f {
		case fieldName:
			q.Name, named, err = r.str(f)
		case fieldState:
			state, _, err = r.str(f)
		case fieldMessages:
			q.Messages, depth, err = r.number(f, true)
		case fieldReady:
			q.Ready, ready, err = r.number(f, true)
		case fieldMessageStats:
			err = r.messageStats(&q, req.counts)
		}
		return err
	})
	switch {
	case err != nil:
		return q, err
	case !present:
		return q, r.fail(fieldItems, faultNotObject)
	case !named:
		return q, r.fail(fieldName, faultMissing)
	case q.Name == "":
		return q, r.fail(fieldName, faultEmpty)
	case !req.rates && (!depth || !ready):
		q.Messages, q.Ready, q.unreadable = 0, 0, "unknown"
		if slices.Contains(queueStates, state) {
			q.unreadable = state
		}
	}
	return q, nil
}

// itemKeys are the keys read of an item of the listing asked for.
func (req pageRequest) itemKeys() []field {
	if req.rates {
		return rateKeys
	}
	return depthKeys
}

// messageStats reads message_stats into q: the publish rate, in publish_details, and when
// counts is set the counts of messages published (publish) and consumed (ack,
// deliver_no_ack and get_no_ack).
//
// RabbitMQ keeps these statistics in groups, each created by the first event of its kind,
// and lists a group whole or not at all: publish with publish_details, and the deliveries
// (ack, deliver_no_ack, get_no_ack, …). A group that is absent counts 0 (nothing was
// published to the queue, or delivered from it); so does message_stats absent or empty. A
// group partly there is an error. publish may come without publish_details (a broker whose
// rates_mode is none), never the other way round.
func (r *jsonReader) messageStats(q *queueStats, counts bool) error {
	keys := statKeys
	if counts {
		keys = countKeys
	}
	var has [len(fieldNames)]bool
	var consumed [3]float64 // ack, deliver_no_ack, get_no_ack: fields that follow one another
	_, err := r.proplist(fieldMessageStats, keys, func(f field) error {
		var err error
		switch f {
		case fieldPublishDetails:
			q.PublishRate, has[f], err = r.publishRate()
		case fieldPublish:
			q.Published, has[f], err = r.number(f, true)
		case fieldAck, fieldDeliverNoAck, fieldGetNoAck:
			consumed[f-fieldAck], has[f], err = r.number(f, true)
		}
		return err
	})
	if err != nil || !counts {
		return err
	}
	if f, ok := partGroup(has); !ok {
		return r.fail(f, faultMissing)
	}
	q.Consumed = consumed[0] + consumed[1] + consumed[2]
	return nil
}

// partGroup returns the field missing from a group of message_stats that is partly there:
// see messageStats.
func partGroup(has [len(fieldNames)]bool) (missing field, ok bool) {
	if has[fieldPublishDetails] && !has[fieldPublish] {
		return fieldPublish, false
	}
	deliveries := []field{fieldAck, fieldDeliverNoAck, fieldGetNoAck}
	if !slices.ContainsFunc(deliveries, func(f field) bool { return has[f] }) {
		return 0, true
	}
	for _, f := range deliveries {
		if !has[f] {
			return f, false
		}
	}
	return 0, true
}

// publishRate reads publish_details, which holds the rate. A null counts as absent.
func (r *jsonReader) publishRate() (rate float64, present bool, err error) {
	var found bool
	present, err = r.object(fieldPublishDetails, []field{fieldRate}, func(f field) error {
		var err error
		rate, found, err = r.number(f, false)
		return err
	})
	if err == nil && present && !found {
		err = r.fail(fieldRate, faultMissing)
	}
	return rate, present, err
}
