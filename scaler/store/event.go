package store

// Event is something to tell the user on the workload, as a Kubernetes Event.
type Event struct {
	Warning bool
	Reason  string
	Message string
}

// Reasons of the Events the Store queues. A source's warnings are queued with the reasons
// the source gives them; the reconciler adds reasons of its own.
const (
	ReasonSourceError     = "SourceError"
	ReasonSourceRecovered = "SourceRecovered"
	ReasonFallbackActive  = "FallbackActive"
	ReasonFallbackEnded   = "FallbackEnded"
)
