package shard

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Label marks the membership Leases; every replica watches the Leases that carry it.
const Label = "qscale.io/member"

// Annotations of a membership Lease: where its holder is reached, and its certificate.
const (
	AnnotationAddress     = "qscale.io/peer-address"
	AnnotationFingerprint = "qscale.io/peer-certificate-sha256"
)

// LeasePrefix starts the name of every membership Lease; a digest of the identity ends it.
const LeasePrefix = "qscale-member-"

// forgetAfter is how long a Lease stays after it expired before a member deletes it: the Lease
// of a replica that was killed, which could not delete its own.
const forgetAfter = time.Minute

// Config says where the membership Leases are and how they are held.
type Config struct {
	Client    kubernetes.Interface
	Namespace string
	// Self is this replica. Its Fingerprint is read again at every renewal from
	// Fingerprint when that is set, so that a rotated certificate is announced.
	Self        Member
	Fingerprint func() string
	// LeaseDuration is how long after a member's last renewal the others count it gone.
	// A member renews every third of it (every second after a failure), and stops owning
	// anything when its own last renewal is older than half of it: well before any other
	// member takes its keys.
	LeaseDuration time.Duration
	Log           logr.Logger
	// OnChange is called, from one goroutine, whenever the members this replica counts
	// live change, itself included.
	OnChange func()
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Members holds this replica's membership Lease and follows everyone's. Start runs it; Owns,
// Live and Peers read what it last saw. It is safe for concurrent use.
type Members struct {
	cfg Config

	mu       sync.RWMutex
	live     []Member // sorted by identity; self included while self is live
	selfLive bool
	renewed  time.Time // this replica's last successful renewal
	// Kept by the loop alone.
	own       *coordinationv1.Lease
	observed  map[string]sighting  // other members' Leases, by name
	announced map[string]time.Time // when a malformed Lease was last logged, by name
}

type sighting struct {
	renewTime string    // the Lease's renewTime as it was last seen to change
	at        time.Time // when, by this replica's clock
	duration  time.Duration
	member    Member
	version   string // resourceVersion
}

// New checks cfg and returns Members that hold no Lease yet.
func New(cfg Config) (*Members, error) {
	if cfg.Client == nil || cfg.Namespace == "" || cfg.Self.Identity == "" {
		return nil, errors.New("sharing the polling needs a client, a namespace and an identity")
	}
	if _, _, err := net.SplitHostPort(cfg.Self.Address); err != nil {
		return nil, fmt.Errorf("peer address %q: %w", cfg.Self.Address, err)
	}
	if cfg.LeaseDuration < 3*time.Second {
		return nil, errors.New("sharing the polling needs a lease duration of at least 3s")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OnChange == nil {
		cfg.OnChange = func() {}
	}
	return &Members{cfg: cfg, observed: map[string]sighting{}, announced: map[string]time.Time{}}, nil
}

// LeaseName is the name of the membership Lease of the replica with identity.
func LeaseName(identity string) string { return LeasePrefix + digest(identity) }

// Owns reports whether this replica owns key now: it is live and the owner among the live
// members. A replica that does not count itself live owns nothing.
func (m *Members) Owns(key string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.selfLive || !m.fresh(m.cfg.Now()) {
		return false
	}
	o, ok := Owner(m.live, key)
	return ok && o.Identity == m.cfg.Self.Identity
}

// fresh reports whether this replica's last renewal is recent enough for it to count itself
// live at now: the others wait the whole lease duration, so it has stopped before any of
// them starts on its keys. Its caller holds mu.
func (m *Members) fresh(now time.Time) bool {
	return !m.renewed.IsZero() && now.Sub(m.renewed) < m.cfg.LeaseDuration/2
}

// Live returns the members counted live, this replica included while it is, by identity.
func (m *Members) Live() []Member {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.live)
}

// Peers returns the live members other than this replica.
func (m *Members) Peers() []Member {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Member, 0, len(m.live))
	for _, p := range m.live {
		if p.Identity != m.cfg.Self.Identity {
			out = append(out, p)
		}
	}
	return out
}

// Start holds this replica's Lease and follows the others' until ctx ends, then deletes its
// Lease so that its keys move at once. It implements controller-runtime's manager.Runnable.
func (m *Members) Start(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(m.cfg.Client, 0, informers.WithNamespace(m.cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = Label + "=true" }))
	leases := factory.Coordination().V1().Leases()
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := leases.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: poke, DeleteFunc: poke, UpdateFunc: func(_, o any) { poke(o) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	// Until it has seen every Lease, this replica could count itself alone and poll all.
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok && ctx.Err() == nil {
			return fmt.Errorf("shard: the %v informer did not sync", typ)
		}
	}

	renewEvery := m.cfg.LeaseDuration / 3
	renew := time.NewTimer(0)
	defer renew.Stop()
	// Leases expire without an event: the expiry timer wakes the loop when the first live
	// Lease (or this replica's own freshness) runs out, so that a member's keys move the
	// moment it is counted gone rather than up to a tick later; the tick is the safety net,
	// and forgets the Leases of members long gone.
	expiry := time.NewTimer(m.cfg.LeaseDuration)
	defer expiry.Stop()
	tick := time.NewTicker(min(time.Second, m.cfg.LeaseDuration/10))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			m.leave()
			return nil
		case <-renew.C:
			if m.renew(ctx) {
				renew.Reset(renewEvery)
			} else {
				renew.Reset(min(renewEvery, time.Second))
			}
		case <-changed:
		case <-tick.C:
		case <-expiry.C:
		}
		if next := m.evaluate(ctx, leases.Lister().Leases(m.cfg.Namespace).List); !next.IsZero() {
			expiry.Reset(max(0, next.Sub(m.cfg.Now())))
		}
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica is a member.
func (*Members) NeedLeaderElection() bool { return false }

// renew creates or renews this replica's Lease, and reports whether it did.
func (m *Members) renew(ctx context.Context) bool {
	rctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseDuration/3)
	defer cancel()
	now := m.cfg.Now()
	want := m.desired(now)
	leases := m.cfg.Client.CoordinationV1().Leases(m.cfg.Namespace)
	var got *coordinationv1.Lease
	var err error
	if m.own == nil {
		got, err = leases.Create(rctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) { // a Lease of a former run with the same identity
			got, err = leases.Get(rctx, want.Name, metav1.GetOptions{})
			if err == nil {
				m.own = got
				return false // renewed at the next round, with its resourceVersion
			}
		}
	} else {
		want.ResourceVersion = m.own.ResourceVersion
		want.Spec.AcquireTime = m.own.Spec.AcquireTime
		got, err = leases.Update(rctx, want, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			m.own = nil // read or create it again at the next round
		}
	}
	if err != nil {
		m.cfg.Log.Info("could not renew this replica's membership Lease", "lease", want.Name, "error", err.Error())
		return false
	}
	m.own = got
	m.mu.Lock()
	m.renewed = now
	m.mu.Unlock()
	return true
}

// desired is this replica's Lease as of now.
func (m *Members) desired(now time.Time) *coordinationv1.Lease {
	self := m.cfg.Self
	if m.cfg.Fingerprint != nil {
		self.Fingerprint = m.cfg.Fingerprint()
	}
	seconds := int32(math.MaxInt32)
	if n := int64(m.cfg.LeaseDuration.Round(time.Second) / time.Second); n >= 0 && n < math.MaxInt32 {
		seconds = int32(n)
	}
	at := metav1.NewMicroTime(now)
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name: LeaseName(self.Identity), Namespace: m.cfg.Namespace,
			Labels:      map[string]string{Label: "true"},
			Annotations: map[string]string{AnnotationAddress: self.Address, AnnotationFingerprint: self.Fingerprint},
		},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &self.Identity, LeaseDurationSeconds: &seconds, AcquireTime: &at, RenewTime: &at},
	}
}

// leave deletes this replica's Lease, so that the others take its keys without waiting for it
// to expire.
func (m *Members) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.cfg.Client.CoordinationV1().Leases(m.cfg.Namespace).Delete(ctx, LeaseName(m.cfg.Self.Identity), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		m.cfg.Log.Info("could not delete this replica's membership Lease; the others take its share when it expires", "error", err.Error())
	}
	m.mu.Lock()
	m.live, m.selfLive = nil, false
	m.mu.Unlock()
}

// evaluate works out the live members from the Leases seen, and calls OnChange if they
// differ from before. It deletes Leases that expired long ago. It returns when the members
// will next change if no Lease does: the first moment a live member's Lease expires or this
// replica stops counting itself live; zero if neither is to come.
func (m *Members) evaluate(ctx context.Context, list func(labels.Selector) ([]*coordinationv1.Lease, error)) (next time.Time) {
	now := m.cfg.Now()
	leases, err := list(labels.Everything())
	if err != nil {
		return time.Time{}
	}
	sooner := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	selfName := LeaseName(m.cfg.Self.Identity)
	seen := map[string]bool{}
	var live []Member
	for _, l := range leases {
		if l.Name == selfName {
			continue
		}
		seen[l.Name] = true
		s, ok := m.sight(l, now)
		if !ok {
			continue
		}
		age := now.Sub(s.at)
		switch {
		case age < s.duration:
			live = append(live, s.member)
			sooner(s.at.Add(s.duration))
		case age > s.duration+forgetAfter:
			m.forget(ctx, l.Name, s.version)
		}
	}
	for name := range m.observed {
		if !seen[name] {
			delete(m.observed, name)
		}
	}
	m.mu.RLock()
	selfLive, renewed := m.fresh(now), m.renewed
	m.mu.RUnlock()
	if selfLive {
		sooner(renewed.Add(m.cfg.LeaseDuration / 2))
		self := m.cfg.Self
		if m.own != nil {
			self.Fingerprint = m.own.Annotations[AnnotationFingerprint]
		}
		live = append(live, self)
	}
	slices.SortFunc(live, func(a, b Member) int { return strings.Compare(a.Identity, b.Identity) })
	m.mu.Lock()
	changed := selfLive != m.selfLive || !sameMembers(live, m.live)
	m.live, m.selfLive = live, selfLive
	m.mu.Unlock()
	if changed {
		m.cfg.Log.Info("members changed", "live", len(live), "self", selfLive)
		m.cfg.OnChange()
	}
	return next
}

// sight records a Lease as seen now and returns what is known of it. A Lease is timed by this
// replica's clock from when its renewTime was first seen to change, as client-go's leader
// election times its Lease, so that clocks set apart do not matter; one seen for the first
// time counts from its renewTime when that is already in the past, so that the Lease of a
// replica killed long ago is not taken for live.
func (m *Members) sight(l *coordinationv1.Lease, now time.Time) (sighting, bool) {
	member, err := memberOf(l)
	if err != nil {
		if last, ok := m.announced[l.Name]; !ok || now.Sub(last) > 10*time.Minute {
			m.announced[l.Name] = now
			m.cfg.Log.Info("ignoring a membership Lease", "lease", l.Name, "error", err.Error())
		}
		return sighting{}, false
	}
	renew := l.Spec.RenewTime.String()
	s, ok := m.observed[l.Name]
	if !ok || s.renewTime != renew {
		at := now
		if !ok && l.Spec.RenewTime.Time.Before(now) {
			at = l.Spec.RenewTime.Time
		}
		s = sighting{renewTime: renew, at: at}
	}
	s.member, s.version = member, l.ResourceVersion
	s.duration = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	m.observed[l.Name] = s
	return s, true
}

// memberOf reads a member from its Lease.
func memberOf(l *coordinationv1.Lease) (Member, error) {
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		return Member{}, errors.New("spec.holderIdentity is empty")
	}
	if l.Spec.RenewTime == nil {
		return Member{}, errors.New("spec.renewTime is not set")
	}
	if l.Spec.LeaseDurationSeconds == nil || *l.Spec.LeaseDurationSeconds <= 0 {
		return Member{}, errors.New("spec.leaseDurationSeconds is not a positive number")
	}
	addr := l.Annotations[AnnotationAddress]
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return Member{}, fmt.Errorf("annotation %s: %q is not host:port", AnnotationAddress, addr)
	}
	fp := l.Annotations[AnnotationFingerprint]
	if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
		return Member{}, fmt.Errorf("annotation %s: want 64 lowercase hex digits", AnnotationFingerprint)
	}
	return Member{Identity: *l.Spec.HolderIdentity, Address: addr, Fingerprint: fp}, nil
}

// forget deletes a Lease that expired long ago, unless it changed since it was seen.
func (m *Members) forget(ctx context.Context, name, version string) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := m.cfg.Client.CoordinationV1().Leases(m.cfg.Namespace).Delete(dctx, name,
		metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &version}})
	if err == nil {
		m.cfg.Log.Info("deleted the membership Lease of a replica gone", "lease", name)
	}
}
