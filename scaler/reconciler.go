package scaler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/sources"
)

// Recorder records Events about an object; client-go's events.EventRecorder satisfies it.
type Recorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Reconciler keeps one kind of workload in line with its qscale.io annotations. It runs on
// every replica of qscale, so that each serves fresh metrics, but only the leader writes to
// the cluster: HPAs, the scale subresource and Events.
type Reconciler struct {
	Client   client.Client
	Kind     string // KindDeployment or KindStatefulSet
	Registry sources.Registry
	Store    *Store
	Poller   *Poller
	Secrets  *Secrets
	Recorder Recorder
	// IsLeader reports whether this replica may write; nil means always.
	IsLeader func() bool
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// Reconcile implements reconcile.Reconciler. Configuration errors are reported with an Event
// and not retried: only an edit of the workload or of a Secret can fix them, and both are
// watched. Errors talking to the API server are returned, to be retried with back-off.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	k, ok := workloadKinds[r.Kind]
	if !ok {
		return reconcile.Result{}, reconcile.TerminalError(fmt.Errorf("unknown workload kind %q", r.Kind))
	}
	t := Target{Namespace: req.Namespace, Kind: k.name, Name: req.Name}
	obj := k.newObject()
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(t) // the HPA goes with it: it is owned by the workload
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if !spec.HasTriggers(obj.GetAnnotations()) {
		r.forget(t)
		if r.leader() {
			return reconcile.Result{}, r.deleteHPA(ctx, obj)
		}
		return reconcile.Result{}, nil
	}
	if err := r.reconfigure(ctx, t, obj); err != nil {
		return reconcile.Result{}, err
	}
	replicas, observed := k.replicas(obj)
	d, ok := r.Store.Decide(t, replicas, observed)
	if !ok {
		return reconcile.Result{}, nil
	}
	events := r.Store.Events(t)
	if !r.leader() {
		return reconcile.Result{}, nil
	}
	for _, e := range events {
		r.event(obj, e)
	}
	return reconcile.Result{}, r.apply(ctx, k, obj, d)
}

// reconfigure loads the workload's configuration when its qscale.io annotations or the Secrets
// they name changed since the last load. Most reconciles follow a poll and change neither, and
// parsing YAML and compiling triggers (PEM keys included) on each would put that work on the
// polling path. A workload that was never valid is left with no configuration, which Decide
// reports; one that was valid keeps scaling on its last valid configuration.
func (r *Reconciler) reconfigure(ctx context.Context, t Target, obj client.Object) error {
	fp, err := r.fingerprint(ctx, t, obj)
	if err != nil || fp == r.Store.Fingerprint(t) {
		return err
	}
	s, triggers, err := r.configure(ctx, t, obj)
	var se *spec.Error
	switch {
	case errors.As(err, &se):
		if r.Store.Invalid(t, se.Error()) && r.leader() {
			r.event(obj, Event{Warning: true, Reason: ReasonInvalidScalingConfig, Message: summary(se)})
		}
	case err != nil:
		return err
	default:
		triggers, _ = r.Store.Configure(t, s, triggers)
		r.Poller.Set(t, triggers, s.PollingInterval)
	}
	r.Store.SetFingerprint(t, fp)
	return nil
}

// fingerprint digests what a configuration is loaded from: the qscale.io annotations and the
// resource versions of the Secrets the last load found named (unchanged annotations name the
// same Secrets), as Secrets last read them.
func (r *Reconciler) fingerprint(ctx context.Context, t Target, obj client.Object) (string, error) {
	h := sha256.New()
	ann := obj.GetAnnotations()
	keys := make([]string, 0, len(ann))
	for k := range ann {
		if strings.HasPrefix(k, spec.AnnotationPrefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%q\n", k, ann[k])
	}
	for _, name := range r.Store.secretNames(t) {
		_, version, err := r.Secrets.Get(ctx, types.NamespacedName{Namespace: t.Namespace, Name: name})
		if err != nil && !errors.Is(err, spec.ErrSecretNotFound) {
			return "", err
		}
		fmt.Fprintf(h, "secret %s@%s\n", name, version)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// configure parses the annotations and compiles the triggers with their Secrets.
func (r *Reconciler) configure(ctx context.Context, t Target, obj client.Object) (*spec.Spec, []sources.Trigger, error) {
	var names []string
	defer func() { r.Store.SetSecrets(t, names) }()
	return spec.Load(obj.GetAnnotations(), r.Registry, func(name string) (map[string]string, error) {
		names = append(names, name)
		data, _, err := r.Secrets.Get(ctx, types.NamespacedName{Namespace: t.Namespace, Name: name})
		return data, err
	})
}

// apply writes the decision: the HPA (none while paused), then the scale subresource.
func (r *Reconciler) apply(ctx context.Context, k workloadKind, obj client.Object, d policy.Decision) error {
	t := Target{Namespace: obj.GetNamespace(), Kind: k.name, Name: obj.GetName()}
	s, triggers := r.Store.current(t)
	var err error
	if d.Paused {
		err = r.deleteHPA(ctx, obj)
	} else {
		err = r.writeHPA(ctx, t, obj, desiredHPA(k, obj, s, triggers))
	}
	var conflict *errHPAConflict
	switch {
	case errors.As(err, &conflict):
		if r.Store.Conflict(t, conflict.msg) {
			r.event(obj, Event{Warning: true, Reason: ReasonHPAConflict, Message: conflict.msg})
		}
		return nil // leave both alone; a change to either HPA brings us back
	case err != nil:
		return err
	}
	r.Store.Conflict(t, "")
	if d.ScaleTo == nil {
		return nil
	}
	if err := r.scale(ctx, obj, *d.ScaleTo); err != nil {
		return err
	}
	switch {
	case d.Paused:
		r.event(obj, Event{Reason: ReasonPausedReplicas, Message: fmt.Sprintf("paused at %d replicas", *d.ScaleTo)})
	case *d.ScaleTo == 0:
		r.event(obj, Event{Reason: ReasonScaledToZero, Message: "every trigger was inactive for the cooldown period: scaled to 0"})
	default:
		r.event(obj, Event{Reason: ReasonActivated, Message: fmt.Sprintf("a trigger became active: scaled from 0 to %d", *d.ScaleTo)})
	}
	return nil
}

// scale sets the workload's replicas through its scale subresource.
func (r *Reconciler) scale(ctx context.Context, obj client.Object, replicas int32) error {
	s := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}
	if err := r.Client.SubResource("scale").Get(ctx, obj, s); err != nil {
		return fmt.Errorf("reading the scale of %s: %w", obj.GetName(), err)
	}
	if s.Spec.Replicas == replicas {
		return nil
	}
	s.Spec.Replicas = replicas
	if err := r.Client.SubResource("scale").Update(ctx, obj, client.WithSubResourceBody(s)); err != nil {
		return fmt.Errorf("scaling %s to %d: %w", obj.GetName(), replicas, err)
	}
	log.FromContext(ctx).Info("scaled", "replicas", replicas)
	return nil
}

// event records e on obj. Its message is capped below the Events API's limit: a longer note
// would be refused, and the user would hear nothing.
func (r *Reconciler) event(obj client.Object, e Event) {
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
	ReasonHPAConflict: "CreateHPA",
	ReasonSourceError: "Poll", ReasonSourceRecovered: "Poll",
	ReasonFallbackActive: "Scale", ReasonFallbackEnded: "Scale", ReasonActivated: "Scale",
	ReasonScaledToZero: "Scale", ReasonPausedReplicas: "Scale",
}

func (r *Reconciler) leader() bool { return r.IsLeader == nil || r.IsLeader() }

func (r *Reconciler) forget(t Target) {
	r.Poller.Remove(t)
	r.Store.Remove(t)
}
