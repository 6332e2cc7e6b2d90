package scaler

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/scaler/share"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
)

// countingConfig is a trigger whose Source counts its polls.
type countingConfig struct {
	Conn string `param:"conn,required"`
}

func (c *countingConfig) Connection() string             { return c.Conn }
func (c *countingConfig) Target() float64                { return 1 }
func (c *countingConfig) Validate() []sources.FieldError { return nil }

type countingSource struct{ polls *atomic.Int64 }

func (s countingSource) Poll(_ context.Context, cfgs []sources.Config) []sources.Sample {
	s.polls.Add(1)
	return make([]sources.Sample, len(cfgs))
}

func (countingSource) Close() error { return nil }

func TestPollerHonoursTheIntervalAndWakesOnChange(t *testing.T) {
	var polls atomic.Int64
	reg := sources.Registry{"counting": {
		NewConfig: func() sources.Config { return &countingConfig{} },
		Open:      func(sources.Config) (sources.Source, error) { return countingSource{&polls}, nil },
	}}
	trigger := func(name string) sources.Trigger {
		tr, err := reg.Parse(sources.Params{Type: "counting", Name: name, Metadata: map[string]string{"conn": "c"}})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	st := store.New(time.Now, store.Options{})
	polled := make(chan store.Target, 16)
	p := NewPoller(sources.NewPool(reg), st, func(t store.Target) { polled <- t }, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = p.Start(ctx) }()
	waitPolled := func(want store.Target) {
		t.Helper()
		select {
		case got := <-polled:
			if got != want {
				t.Fatalf("polled %v, want %v", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no poll")
		}
	}

	a := store.Target{Namespace: "ns", Kind: store.KindDeployment, Name: "a"}
	trs, _ := st.Configure(a, policy.Spec{PollingInterval: time.Hour}, []sources.Trigger{trigger("x")})
	if !p.Set(a, trs, time.Hour) {
		t.Fatal("the first Set should report a change")
	}
	waitPolled(a)
	for range 10 {
		if p.Set(a, trs, time.Hour) {
			t.Fatal("setting what is already set should change nothing")
		}
	}
	if n := polls.Load(); n != 1 {
		t.Fatalf("%d polls after unchanged Sets, want 1: the interval is an hour", n)
	}

	b := store.Target{Namespace: "ns", Kind: store.KindDeployment, Name: "b"} // joins the same connection: polled at once
	trsB, _ := st.Configure(b, policy.Spec{PollingInterval: time.Hour}, []sources.Trigger{trigger("y")})
	if !p.Set(b, trsB, time.Hour) {
		t.Fatal("a new workload should report a change")
	}
	for range 2 { // one batched poll serves both workloads of the connection
		select {
		case <-polled:
		case <-time.After(10 * time.Second):
			t.Fatal("no poll after a workload joined")
		}
	}
	if n := polls.Load(); n != 2 {
		t.Fatalf("%d polls, want 2: one for the start, one for the join", n)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		failed   int
		r        float64
		want     time.Duration
	}{
		{name: "no failure: the interval", interval: 10 * time.Second, failed: 0, r: 0.9, want: 10 * time.Second},
		{name: "the first failure: the interval", interval: 10 * time.Second, failed: 1, r: 0.9, want: 10 * time.Second},
		{name: "the second: doubled", interval: 10 * time.Second, failed: 2, r: 0.5, want: 20 * time.Second},
		{name: "the third: doubled again", interval: 10 * time.Second, failed: 3, r: 0.5, want: 40 * time.Second},
		{name: "capped at a minute", interval: 10 * time.Second, failed: 30, r: 0.5, want: time.Minute},
		{name: "jitter low", interval: 10 * time.Second, failed: 30, r: 0, want: 54 * time.Second},
		{name: "jitter high", interval: 10 * time.Second, failed: 30, r: 1, want: 66 * time.Second},
		{name: "an interval above the cap is kept", interval: 5 * time.Minute, failed: 4, r: 0.5, want: 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := backoff(tt.interval, tt.failed, tt.r); got != tt.want {
				t.Errorf("backoff(%v, %d, %v) = %v, want %v", tt.interval, tt.failed, tt.r, got, tt.want)
			}
		})
	}
}

// slowSource's Poll waits until released, as a broker that stopped answering mid-request.
type slowSource struct {
	started chan<- struct{}
	release <-chan struct{}
}

func (s slowSource) Poll(ctx context.Context, cfgs []sources.Config) []sources.Sample {
	select {
	case s.started <- struct{}{}:
	default:
	}
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	return make([]sources.Sample, len(cfgs))
}

func (s slowSource) Close() error {
	<-s.release
	return nil
}

// Removing the workload of a broker that hangs must not wait for that broker: the reconciler
// that removes it, and every other connection's loop, go on.
func TestRemovingASlowBrokersWorkloadDoesNotWait(t *testing.T) {
	started, release := make(chan struct{}, 1), make(chan struct{})
	defer close(release)
	var fastPolls atomic.Int64
	reg := sources.Registry{"counting": {
		NewConfig: func() sources.Config { return &countingConfig{} },
		Open: func(cfg sources.Config) (sources.Source, error) {
			if cfg.Connection() == "slow" {
				return slowSource{started: started, release: release}, nil
			}
			return countingSource{&fastPolls}, nil
		},
	}}
	trigger := func(conn string) sources.Trigger {
		tr, err := reg.Parse(sources.Params{Type: "counting", Name: conn, Metadata: map[string]string{"conn": conn}})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	p := NewPoller(sources.NewPool(reg), store.New(time.Now, store.Options{}), nil, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = p.Start(ctx) }()
	slow, fast := store.Target{Namespace: "ns", Kind: store.KindDeployment, Name: "slow"}, store.Target{Namespace: "ns", Kind: store.KindDeployment, Name: "fast"}
	p.Set(slow, []sources.Trigger{trigger("slow")}, time.Minute)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow broker was never polled")
	}
	removed := make(chan struct{})
	go func() {
		p.Remove(slow)
		p.Set(fast, []sources.Trigger{trigger("fast")}, time.Minute)
		close(removed)
	}()
	select {
	case <-removed:
	case <-time.After(10 * time.Second):
		t.Fatal("Remove waited for the slow broker's poll and close")
	}
	deadline := time.Now().Add(10 * time.Second)
	for fastPolls.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("another connection was not polled while the slow broker hung")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sharingOf is a Sharing whose owned connections a test sets; it keeps what it is given.
type sharingOf struct {
	mu     sync.Mutex
	owned  map[string]bool
	polled []share.Polled
}

func (s *sharingOf) Owns(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owned[key]
}

func (s *sharingOf) Polled(p []share.Polled) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polled = append(s.polled, p...)
}

func (s *sharingOf) set(key string, owned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owned[key] = owned
}

func (s *sharingOf) shared() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.polled)
}

// A replica polls only the connections it owns, hands their samples over for the others,
// polls at once a connection it gains, and keeps the pace of those it keeps.
func TestPollerPollsOnlyWhatItOwns(t *testing.T) {
	polls := map[string]*atomic.Int64{"mine": {}, "theirs": {}}
	reg := sources.Registry{"counting": {
		NewConfig: func() sources.Config { return &countingConfig{} },
		Open: func(cfg sources.Config) (sources.Source, error) {
			return countingSource{polls[cfg.Connection()]}, nil
		},
	}}
	trigger := func(conn string) sources.Trigger {
		tr, err := reg.Parse(sources.Params{Type: "counting", Name: conn, Metadata: map[string]string{"conn": conn}})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	mine, theirs := trigger("mine"), trigger("theirs")
	sharing := &sharingOf{owned: map[string]bool{mine.Key(): true}}
	st := store.New(time.Now, store.Options{})
	p := NewPoller(sources.NewPool(reg), st, nil, nil, sharing)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = p.Start(ctx) }()
	w := store.Target{Namespace: "ns", Kind: store.KindDeployment, Name: "w"}
	trs, _ := st.Configure(w, policy.Spec{PollingInterval: time.Hour}, []sources.Trigger{mine, theirs})
	p.Set(w, trs, time.Hour)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("the owned connection is polled and shared", func() bool { return polls["mine"].Load() == 1 && sharing.shared() == 1 })
	p.Reshard() // nothing changed
	if n := polls["theirs"].Load(); n != 0 {
		t.Fatalf("the connection another replica owns was polled %d times", n)
	}
	sharing.set(theirs.Key(), true)
	p.Reshard()
	waitFor("a connection gained is polled at once", func() bool { return polls["theirs"].Load() == 1 })
	if n := polls["mine"].Load(); n != 1 {
		t.Errorf("the connection kept throughout was polled %d times, want 1: a change of members costs no extra poll", n)
	}
}
