package scaler

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/qscale/qscale/scaler/store"
)

// Recorder records Events about an object; client-go's events.EventRecorder satisfies it.
type Recorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Reasons of the Events the reconciler records. The Store queues Events of its own
// (store.ReasonSourceError and the others), and a source's warnings carry the source's reasons.
const (
	ReasonInvalidScalingConfig = "InvalidScalingConfig"
	ReasonScalingConfigValid   = "ScalingConfigValid"
	ReasonActivated            = "Activated"
	ReasonScaledToZero         = "ScaledToZero"
	ReasonPausedReplicas       = "PausedReplicas"
	ReasonHPAConflict          = "HPAConflict"
)

// event records e on obj. Its message is capped below the Events API's limit: a longer note
// would be refused, and the user would hear nothing.
func (r *Reconciler) event(obj client.Object, e store.Event) {
	typ := corev1.EventTypeNormal
	if e.Warning {
		typ = corev1.EventTypeWarning
	}
	action, ok := eventActions[e.Reason]
	if !ok {
		action = "Poll" // a source's warning
	}
	r.Recorder.Eventf(obj, nil, typ, e.Reason, action, "%s", capNote(e.Message, noteLimit))
}

// eventActions is the action of each Event reason: what qscale was doing.
var eventActions = map[string]string{
	ReasonInvalidScalingConfig: "Configure", ReasonScalingConfigValid: "Configure",
	ReasonHPAConflict:       "CreateHPA",
	store.ReasonSourceError: "Poll", store.ReasonSourceRecovered: "Poll",
	store.ReasonFallbackActive: "Scale", store.ReasonFallbackEnded: "Scale", ReasonActivated: "Scale",
	ReasonScaledToZero: "Scale", ReasonPausedReplicas: "Scale",
}
