package scaler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
)

// Reconciler keeps one kind of workload in line with its qscale.io annotations. It runs on
// every replica of qscale, so that each serves fresh metrics, but only the leader writes to
// the cluster: HPAs, the scale subresource and Events. Setup builds one for each kind.
type Reconciler struct {
	Client   client.Client
	Kind     string // store.KindDeployment or store.KindStatefulSet
	Registry sources.Registry
	Store    *store.Store
	Poller   *Poller
	Secrets  *Secrets
	Recorder Recorder
	Metrics  *Metrics // nil records nothing
	// IsLeader reports whether this replica may write; nil means always.
	IsLeader func() bool

	// records is the record of workloads that Setup shares among the reconcilers of every
	// kind and the Secret refresher.
	records *records
	// statuses writes the status annotations, shared as records is.
	statuses *statusWriter
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
	if r.records == nil || r.statuses == nil {
		return reconcile.Result{}, reconcile.TerminalError(errors.New("a Reconciler not built by Setup has no record of workloads"))
	}
	t := store.Target{Namespace: req.Namespace, Kind: k.name, Name: req.Name}
	defer func() {
		invalid, known := r.records.configInvalid(t)
		r.Metrics.ConfigInvalid(t, invalid, known)
	}()
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
		if !r.leader() {
			return reconcile.Result{}, nil
		}
		if err := r.deleteHPA(ctx, obj); err != nil {
			return reconcile.Result{}, err
		}
		return reconcile.Result{}, r.removeStatus(ctx, obj)
	}
	recovered, err := r.reconfigure(ctx, t, obj)
	if err != nil {
		return reconcile.Result{}, err
	}
	// Events are recorded in the order things happened: what the polls found since the last
	// reconcile, the configuration's recovery, then what the decision found.
	events := r.Store.Events(t)
	if recovered {
		events = append(events, store.Event{Reason: ReasonScalingConfigValid, Message: "the qscale.io annotations are valid again"})
	}
	d, decided := r.Store.Decide(t, replicas(obj))
	events = append(events, r.Store.Events(t)...)
	if !r.leader() {
		return reconcile.Result{}, nil
	}
	for _, e := range events {
		r.event(obj, e)
	}
	if decided { // a workload never valid has nothing to apply, but a status to tell
		if err := r.apply(ctx, k, obj, d); err != nil {
			return reconcile.Result{}, err
		}
	}
	r.writeStatus(t, obj, d)
	return reconcile.Result{}, nil
}

// reconfigure loads the workload's configuration when its qscale.io annotations or the Secrets
// they name changed since the last load. Most reconciles follow a poll and change neither, and
// parsing YAML and compiling triggers (PEM keys included) on each would put that work on the
// polling path. A workload that was never valid is left with no configuration, which Decide
// reports; one that was valid keeps scaling on its last valid configuration. It reports
// whether the configuration became valid again.
func (r *Reconciler) reconfigure(ctx context.Context, t store.Target, obj client.Object) (recovered bool, err error) {
	fp, err := r.fingerprint(ctx, t, obj)
	if err != nil || fp == r.records.fingerprint(t) {
		return false, err
	}
	s, triggers, err := r.configure(ctx, t, obj)
	var se *spec.Error
	switch {
	case errors.As(err, &se):
		note := summary(se)
		if r.records.invalid(t, se.Error(), note) && r.leader() {
			r.event(obj, store.Event{Warning: true, Reason: ReasonInvalidScalingConfig, Message: note})
		}
	case err != nil:
		return false, err
	default:
		triggers, _ = r.Store.Configure(t, s.Policy(), triggers)
		recovered = r.records.valid(t, s, triggers)
		r.Poller.Set(t, triggers, s.PollingInterval)
	}
	r.records.setFingerprint(t, fp)
	return recovered, nil
}

// fingerprint digests what a configuration is loaded from: the qscale.io annotations that
// configure (the status qscale writes is not one: writing it must not reload anything) and
// the resource versions of the Secrets the last load found named (unchanged annotations name
// the same Secrets), as Secrets last read them.
func (r *Reconciler) fingerprint(ctx context.Context, t store.Target, obj client.Object) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "annotations %s\n", spec.ConfigDigest(obj.GetAnnotations()))
	for _, name := range r.records.secretNames(t) {
		_, version, err := r.Secrets.Get(ctx, types.NamespacedName{Namespace: t.Namespace, Name: name})
		if err != nil && !errors.Is(err, spec.ErrSecretNotFound) {
			return "", err
		}
		fmt.Fprintf(h, "secret %s@%s\n", name, version)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// configure parses the annotations and compiles the triggers with their Secrets.
func (r *Reconciler) configure(ctx context.Context, t store.Target, obj client.Object) (*spec.Spec, []sources.Trigger, error) {
	var names []string
	defer func() { r.records.setSecrets(t, names) }()
	return spec.Load(obj.GetAnnotations(), r.Registry, func(name string) (map[string]string, error) {
		names = append(names, name)
		data, _, err := r.Secrets.Get(ctx, types.NamespacedName{Namespace: t.Namespace, Name: name})
		return data, err
	})
}

// apply writes the decision: the HPA (none while paused), then the scale subresource.
func (r *Reconciler) apply(ctx context.Context, k workloadKind, obj client.Object, d policy.Decision) error {
	t := store.Target{Namespace: obj.GetNamespace(), Kind: k.name, Name: obj.GetName()}
	s, triggers := r.records.current(t)
	var err error
	if d.Paused {
		err = r.deleteHPA(ctx, obj)
	} else {
		err = r.writeHPA(ctx, t, obj, desiredHPA(k, obj, s, triggers))
	}
	var conflict *errHPAConflict
	switch {
	case errors.As(err, &conflict):
		if r.records.setConflict(t, conflict.msg) {
			r.event(obj, store.Event{Warning: true, Reason: ReasonHPAConflict, Message: conflict.msg})
		}
		return nil // leave both alone; a change to either HPA brings us back
	case err != nil:
		return err
	}
	r.records.setConflict(t, "")
	if d.ScaleTo == nil {
		return nil
	}
	if err := r.scale(ctx, obj, *d.ScaleTo); err != nil {
		return err
	}
	switch {
	case d.Paused:
		r.event(obj, store.Event{Reason: ReasonPausedReplicas, Message: fmt.Sprintf("paused at %d replicas", *d.ScaleTo)})
	case *d.ScaleTo == 0:
		r.event(obj, store.Event{Reason: ReasonScaledToZero, Message: "every trigger was inactive for the cooldown period: scaled to 0"})
	default:
		r.event(obj, store.Event{Reason: ReasonActivated, Message: fmt.Sprintf("a trigger became active: scaled from 0 to %d", *d.ScaleTo)})
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

func (r *Reconciler) leader() bool { return r.IsLeader == nil || r.IsLeader() }

func (r *Reconciler) forget(t store.Target) {
	r.Poller.Remove(t)
	r.Store.Remove(t)
	r.records.remove(t)
	r.statuses.drop(t)
}
