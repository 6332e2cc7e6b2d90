// Package leader elects, among qscale's replicas, the one that writes to the cluster.
//
// Elector campaigns for a coordination.k8s.io Lease with client-go's leader election. Unlike
// controller-runtime's election it never ends the process: a replica that cannot renew its
// Lease (the API server is away, say) stops writing and campaigns again, while it goes on
// polling and serving metrics. A replica that is stopped gives its Lease up at once, so
// another takes over without waiting for it to expire.
package leader

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Defaults of Config: client-go's and controller-runtime's.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// Config says where the Lease is and how it is held. Zero durations take the defaults.
type Config struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string
	// Identity names this replica in the Lease's holderIdentity; it must be unique.
	Identity string
	// LeaseDuration is how long others wait after the last renewal before they take the
	// Lease; RenewDeadline is how long the holder keeps trying to renew before it stops
	// writing (shorter than LeaseDuration, so that two never write at once); RetryPeriod
	// is the pause between attempts.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Log                                       logr.Logger
}

// Elector holds or campaigns for the Lease. Start runs it; IsLeader says whether this
// replica may write now.
type Elector struct {
	cfg Config

	mu      sync.Mutex
	leading bool
}

// New checks cfg and returns an Elector that has not started campaigning.
func New(cfg Config) (*Elector, error) {
	if cfg.Client == nil || cfg.Namespace == "" || cfg.Name == "" || cfg.Identity == "" {
		return nil, errors.New("leader election needs a client, a namespace, a Lease name and an identity")
	}
	cfg.LeaseDuration = or(cfg.LeaseDuration, DefaultLeaseDuration)
	cfg.RenewDeadline = or(cfg.RenewDeadline, DefaultRenewDeadline)
	cfg.RetryPeriod = or(cfg.RetryPeriod, DefaultRetryPeriod)
	// The Lease records its duration in whole seconds: a shorter one would read as 0, and
	// every candidate would think it expired.
	if cfg.LeaseDuration < time.Second || cfg.RenewDeadline >= cfg.LeaseDuration || cfg.RetryPeriod >= cfg.RenewDeadline {
		return nil, errors.New("leader election needs retry period < renew deadline < lease duration, and a lease of at least 1s")
	}
	return &Elector{cfg: cfg}, nil
}

func or(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// IsLeader reports whether this replica holds the Lease.
func (e *Elector) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leading
}

// Start campaigns until ctx ends, holding the Lease whenever it can, and releases it when
// ctx ends. It implements controller-runtime's manager.Runnable.
func (e *Elector) Start(ctx context.Context) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: e.cfg.Namespace, Name: e.cfg.Name},
		Client:     e.cfg.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.cfg.Identity},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			Name:            e.cfg.Name,
			LeaseDuration:   e.cfg.LeaseDuration,
			RenewDeadline:   e.cfg.RenewDeadline,
			RetryPeriod:     e.cfg.RetryPeriod,
			ReleaseOnCancel: true,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: e.lead,
				OnStoppedLeading: e.stop,
			},
		})
		if err != nil {
			return err
		}
		le.Run(ctx) // returns when the Lease is lost or ctx ends
	}
	return nil
}

// lead marks this replica the leader while ctx, the term of its Lease, lasts. client-go
// calls it in a goroutine of its own, so it may run after the term has already ended: the
// check under the lock keeps it from marking a leader that is not.
func (e *Elector) lead(ctx context.Context) {
	e.mu.Lock()
	if ctx.Err() == nil {
		e.leading = true
		e.cfg.Log.Info("leading: this replica writes to the cluster", "identity", e.cfg.Identity)
	}
	e.mu.Unlock()
	<-ctx.Done()
	e.stop()
}

func (e *Elector) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.leading {
		e.cfg.Log.Info("stopped leading: this replica no longer writes, and campaigns again", "identity", e.cfg.Identity)
	}
	e.leading = false
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: the Elector runs on every
// replica.
func (*Elector) NeedLeaderElection() bool { return false }
