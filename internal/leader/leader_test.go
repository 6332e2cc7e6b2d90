package leader

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func elector(t *testing.T, client *fake.Clientset, identity string) *Elector {
	t.Helper()
	e, err := New(Config{Client: client, Namespace: "qscale", Name: "qscale.io", Identity: identity,
		LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOneLeaderAndAHandoverOnStop(t *testing.T) {
	client := fake.NewClientset()
	a, b := elector(t, client, "a"), elector(t, client, "b")
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	doneA := make(chan struct{})
	go func() { _ = a.Start(ctxA); close(doneA) }()
	waitFor(t, "a leads", a.IsLeader)
	go func() { _ = b.Start(ctxB) }()
	for range 20 { // b campaigns meanwhile and must not lead while a renews
		if b.IsLeader() {
			t.Fatal("two leaders at once")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopA()
	<-doneA
	if a.IsLeader() {
		t.Error("a stopped but still says it leads")
	}
	waitFor(t, "b leads after a gave its Lease up", b.IsLeader)
}

// A leader that cannot renew stops writing and campaigns again, without ending: when the API
// server answers again it leads again.
func TestALostLeaseStopsWritingWithoutEnding(t *testing.T) {
	client := fake.NewClientset()
	var refuse atomic.Bool
	client.PrependReactor("*", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if refuse.Load() {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	a := elector(t, client, "a")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan struct{})
	go func() { _ = a.Start(ctx); close(done) }()
	waitFor(t, "a leads", a.IsLeader)
	refuse.Store(true)
	waitFor(t, "a stops leading while the API server refuses", func() bool { return !a.IsLeader() })
	select {
	case <-done:
		t.Fatal("the elector ended when its Lease was lost")
	default:
	}
	refuse.Store(false)
	waitFor(t, "a leads again once the API server answers", a.IsLeader)
}

func TestNewRefusesUnsafeDurations(t *testing.T) {
	tests := []struct {
		name                                      string
		leaseDuration, renewDeadline, retryPeriod time.Duration
	}{
		{name: "renew deadline beyond the lease", leaseDuration: time.Second, renewDeadline: 2 * time.Second, retryPeriod: time.Millisecond},
		{name: "retry period beyond the renew deadline", leaseDuration: 10 * time.Second, renewDeadline: time.Second, retryPeriod: 2 * time.Second},
		{name: "a lease under a second (the Lease counts whole seconds)", leaseDuration: 900 * time.Millisecond, renewDeadline: 500 * time.Millisecond, retryPeriod: 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Client: fake.NewClientset(), Namespace: "n", Name: "l", Identity: "i",
				LeaseDuration: tt.leaseDuration, RenewDeadline: tt.renewDeadline, RetryPeriod: tt.retryPeriod})
			if err == nil {
				t.Fatal("New accepted durations that could let two replicas write at once")
			}
		})
	}
}
