package store

import (
	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/sources"
)

// Observer is told what the Store records, to export it (as Prometheus metrics, say).
//
// Its methods are called with the Store's lock held, in the order the Store changed: a
// trigger that Dropped or Removed forgot is never told of again by a poll that finished
// meanwhile. They must return quickly and must not call the Store.
type Observer interface {
	// Sampled: a poll of the trigger tr of t answered s, and the Store recorded it. here
	// says whether this replica polled it; if not, another replica did and sent it.
	Sampled(t Target, tr sources.Trigger, s sources.Sample, here bool)
	// Decided: d is the new Decision of t, whose triggers are listed in the order of
	// d.Metrics.
	Decided(t Target, triggers []sources.Trigger, d policy.Decision)
	// Dropped: a new configuration of t no longer has these triggers.
	Dropped(t Target, triggers []sources.Trigger)
	// Removed: the Store forgot t, and with it these triggers.
	Removed(t Target, triggers []sources.Trigger)
}

// noObserver is the Observer of a Store that was given none.
type noObserver struct{}

func (noObserver) Sampled(Target, sources.Trigger, sources.Sample, bool) {}
func (noObserver) Decided(Target, []sources.Trigger, policy.Decision)    {}
func (noObserver) Dropped(Target, []sources.Trigger)                     {}
func (noObserver) Removed(Target, []sources.Trigger)                     {}
