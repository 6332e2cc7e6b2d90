package shard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const fingerprint = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("kafka\x00broker-%d:9092", i)
	}
	return out
}

func TestOwnerSpreadsKeysAndMovesOnlyThoseOfAMemberGone(t *testing.T) {
	members := []Member{{Identity: "a"}, {Identity: "b"}, {Identity: "c"}}
	ks := keys(3000)
	count := map[string]int{}
	before := map[string]string{}
	for _, k := range ks {
		o, _ := Owner(members, k)
		count[o.Identity]++
		before[k] = o.Identity
	}
	for _, m := range members {
		if n := count[m.Identity]; n < 800 || n > 1200 {
			t.Errorf("%s owns %d of 3000 keys, want about a third", m.Identity, n)
		}
	}
	for _, k := range ks {
		o, _ := Owner(members[:2], k) // c is gone
		if before[k] != "c" && o.Identity != before[k] {
			t.Fatalf("key %q moved from %s to %s though its owner stayed", k, before[k], o.Identity)
		}
	}
	if _, ok := Owner(nil, "k"); ok {
		t.Error("a key has an owner among no members")
	}
}

// member starts Members of identity on client and stops it when the test ends or stop is
// called; it returns the Members and stop, which waits until Start has returned.
func member(t *testing.T, client *fake.Clientset, identity string) (*Members, func()) {
	t.Helper()
	m, err := New(Config{Client: client, Namespace: "qscale", Self: Member{Identity: identity, Address: identity + ":6443"},
		Fingerprint: func() string { return fingerprint }, LeaseDuration: 3 * time.Second, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Start(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return m, stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// owners counts, for each key, the members among ms that own it.
func owners(ks []string, ms ...*Members) []int {
	out := make([]int, len(ks))
	for i, k := range ks {
		for _, m := range ms {
			if m.Owns(k) {
				out[i]++
			}
		}
	}
	return out
}

func each(ns []int, want int) bool {
	for _, n := range ns {
		if n != want {
			return false
		}
	}
	return true
}

func TestMembersShareKeysAndTakeThemOverWhenOneLeaves(t *testing.T) {
	client := fake.NewClientset()
	a, _ := member(t, client, "a")
	b, stopB := member(t, client, "b")
	ks := keys(200)
	waitFor(t, "both see two members", func() bool { return len(a.Live()) == 2 && len(b.Live()) == 2 })
	waitFor(t, "each key has one owner", func() bool { return each(owners(ks, a, b), 1) })
	if n := len(a.Peers()); n != 1 || a.Peers()[0].Address != "b:6443" || a.Peers()[0].Fingerprint != fingerprint {
		t.Errorf("a's peers: %+v, want b at b:6443 with its fingerprint", a.Peers())
	}
	ownedByA := 0
	for _, k := range ks {
		if a.Owns(k) {
			ownedByA++
		}
	}
	if ownedByA < 50 || ownedByA > 150 {
		t.Errorf("a owns %d of 200 keys, want about half", ownedByA)
	}
	stopB() // deletes its Lease: a takes its keys without waiting for it to expire
	if _, err := client.CoordinationV1().Leases("qscale").Get(context.Background(), LeaseName("b"), metav1.GetOptions{}); err == nil {
		t.Error("b's Lease is still there after b stopped")
	}
	waitFor(t, "a owns every key", func() bool { return each(owners(ks, a), 1) })
}

// A member whose renewals fail stops owning keys before the other member takes them: no key
// ever has two owners.
func TestAMemberThatCannotRenewStopsOwningBeforeTheOthersTakeOver(t *testing.T) {
	client := fake.NewClientset()
	var cut atomic.Bool
	client.PrependReactor("update", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		l := action.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease)
		if cut.Load() && l.Name == LeaseName("b") {
			return true, nil, errors.New("the API server is out of reach")
		}
		return false, nil, nil
	})
	a, _ := member(t, client, "a")
	b, _ := member(t, client, "b")
	ks := keys(200)
	waitFor(t, "each key has one owner", func() bool { return each(owners(ks, a, b), 1) })
	cut.Store(true)
	deadline := time.Now().Add(20 * time.Second)
	for !each(owners(ks, a), 1) {
		for i, n := range owners(ks, a, b) {
			if n > 1 {
				t.Fatalf("key %q has two owners", ks[i])
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("a never took b's keys")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !each(owners(ks, b), 0) {
		t.Error("b still owns keys after a took them")
	}
	cut.Store(false)
	waitFor(t, "b shares again once it renews", func() bool { return each(owners(ks, a, b), 1) && !each(owners(ks, b), 0) })
}

func TestLeasesOfReplicasGoneOrMalformedAreNotMembers(t *testing.T) {
	long := metav1.NewMicroTime(time.Now().Add(-10 * time.Minute))
	seconds := int32(3)
	lease := func(name, identity string, annotations map[string]string) *coordinationv1.Lease {
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "qscale", Labels: map[string]string{Label: "true"}, Annotations: annotations},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &identity, RenewTime: &long, LeaseDurationSeconds: &seconds},
		}
	}
	now := metav1.NewMicroTime(time.Now().Add(time.Hour)) // renewed "now" by a clock set ahead
	bad := lease("qscale-member-bad", "bad", map[string]string{AnnotationAddress: "no port", AnnotationFingerprint: fingerprint})
	bad.Spec.RenewTime = &now
	client := fake.NewClientset(
		lease("qscale-member-gone", "gone", map[string]string{AnnotationAddress: "gone:6443", AnnotationFingerprint: fingerprint}),
		bad,
	)
	a, _ := member(t, client, "a")
	waitFor(t, "the Lease of the replica gone long ago is deleted", func() bool {
		_, err := client.CoordinationV1().Leases("qscale").Get(context.Background(), "qscale-member-gone", metav1.GetOptions{})
		return err != nil
	})
	waitFor(t, "a is live", func() bool { return len(a.Live()) == 1 })
	if got := a.Live(); got[0].Identity != "a" {
		t.Errorf("live members: %+v, want a alone (the malformed Lease names no address)", got)
	}
	if !each(owners(keys(50), a), 1) {
		t.Error("a, alone, does not own every key")
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	client := fake.NewClientset()
	for name, cfg := range map[string]Config{
		"no identity":    {Client: client, Namespace: "q", Self: Member{Address: "a:1"}, LeaseDuration: time.Minute},
		"address":        {Client: client, Namespace: "q", Self: Member{Identity: "a", Address: "a"}, LeaseDuration: time.Minute},
		"short duration": {Client: client, Namespace: "q", Self: Member{Identity: "a", Address: "a:1"}, LeaseDuration: time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if name := LeaseName("host_9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"); !strings.HasPrefix(name, LeasePrefix) || len(name) != len(LeasePrefix)+16 {
		t.Errorf("LeaseName: %q", name)
	}
}

// evaluate names the moment the members next change without a Lease changing: when the first
// live Lease runs out, or this replica's own freshness does. The loop wakes then, not a tick
// later.
func TestEvaluateNamesTheNextExpiry(t *testing.T) {
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := start
	m, err := New(Config{Client: fake.NewClientset(), Namespace: "qscale", Self: Member{Identity: "a", Address: "a:6443"},
		LeaseDuration: 10 * time.Second, Now: func() time.Time { return now }, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	changes := 0
	m.cfg.OnChange = func() { changes++ }
	m.renewed = start.Add(-time.Second) // fresh until start+4s: half the lease after its renewal
	seconds := int32(3)
	lease := func(identity string, renewed time.Time) *coordinationv1.Lease {
		at := metav1.NewMicroTime(renewed)
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: LeaseName(identity), Namespace: "qscale",
				Annotations: map[string]string{AnnotationAddress: identity + ":6443", AnnotationFingerprint: fingerprint}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &identity, RenewTime: &at, LeaseDurationSeconds: &seconds},
		}
	}
	leases := []*coordinationv1.Lease{lease("b", start.Add(-2*time.Second)), lease("c", start.Add(-time.Second))}
	list := func(labels.Selector) ([]*coordinationv1.Lease, error) { return leases, nil }
	for _, step := range []struct {
		name string
		at   time.Time
		live int
		next time.Time
	}{
		{"b's Lease runs out first", start, 3, start.Add(time.Second)},
		{"then c's", start.Add(time.Second), 2, start.Add(2 * time.Second)},
		{"then a's own freshness", start.Add(2 * time.Second), 1, start.Add(4 * time.Second)},
		{"a alone and stale: nothing to come", start.Add(4 * time.Second), 0, time.Time{}},
	} {
		now = step.at
		next := m.evaluate(context.Background(), list)
		if got := len(m.Live()); got != step.live {
			t.Errorf("%s: %d live members, want %d", step.name, got, step.live)
		}
		if !next.Equal(step.next) {
			t.Errorf("%s: next change at %v, want %v", step.name, next.Sub(start), step.next.Sub(start))
		}
	}
	if changes != 4 {
		t.Errorf("OnChange called %d times, want 4 (each step changed the members)", changes)
	}
}
