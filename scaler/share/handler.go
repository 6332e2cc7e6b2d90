package share

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/go-logr/logr"

	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
)

// Recorder is where a replica keeps the samples the others send: the Store.
type Recorder interface {
	// RecordShared records a sample of the trigger with identity id of t, polled at at, and
	// reports whether t holds that trigger.
	RecordShared(t store.Target, id string, s sources.Sample, at time.Time) bool
}

// Handler records the batches posted to Path into rec and calls notify for each workload that
// got a sample. It answers 204 once the batch is recorded, 400 to a batch that is not JSON,
// 405 to anything but POST and 413 to one over the size limit. A sample that does not hold up
// is skipped and counted, and the others of its batch are recorded.
type Handler struct {
	Recorder Recorder
	Notify   func(store.Target)
	Metrics  *Metrics
	Log      logr.Logger
	Now      func() time.Time // default time.Now
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST a batch of samples", http.StatusMethodNotAllowed)
		return
	}
	var b Batch
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&b)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		http.Error(w, "the batch is too large", http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(w, "the batch is not JSON of samples", http.StatusBadRequest)
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	at := now()
	touched := map[store.Target]bool{}
	for _, s := range b.Samples {
		t, sample, polled, err := decode(s, at)
		if err != nil {
			h.Metrics.received(resultInvalid)
			h.Log.V(1).Info("dropped a sample from a peer", "from", b.From, "error", err.Error())
			continue
		}
		if !h.Recorder.RecordShared(t, s.Trigger, sample, polled) {
			h.Metrics.received(resultUnknown)
			continue
		}
		h.Metrics.received(resultRecorded)
		h.Metrics.aged(at.Sub(polled))
		touched[t] = true
	}
	for t := range touched {
		h.Notify(t)
	}
	w.WriteHeader(http.StatusNoContent)
}
