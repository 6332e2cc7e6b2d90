package scaler

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

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
	store := NewStore(time.Now, nil)
	polled := make(chan Target, 16)
	p := NewPoller(sources.NewPool(reg), store, func(t Target) { polled <- t }, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = p.Start(ctx) }()
	waitPolled := func(want Target) {
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

	a := Target{"ns", KindDeployment, "a"}
	trs, _ := store.Configure(a, &Spec{PollingInterval: time.Hour}, []sources.Trigger{trigger("x")})
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

	b := Target{"ns", KindDeployment, "b"} // joins the same connection: polled at once
	trsB, _ := store.Configure(b, &Spec{PollingInterval: time.Hour}, []sources.Trigger{trigger("y")})
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
