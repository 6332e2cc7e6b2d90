package sources_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qscale/qscale/sources"
)

// fakeConfig is a trigger config whose Source returns its Value.
type fakeConfig struct {
	Conn  string  `param:"conn,required"`
	Value float64 `param:"value"`
}

func (c *fakeConfig) Connection() string             { return c.Conn }
func (c *fakeConfig) Target() float64                { return 1 }
func (c *fakeConfig) Validate() []sources.FieldError { return nil }
func (c *fakeConfig) sample() sources.Sample {
	return sources.Sample{Value: c.Value, Active: c.Value > 0}
}

// fakeKind counts Opens, Polls and Closes per connection.
type fakeKind struct {
	mu                   sync.Mutex
	opens, polls, closes map[string]int
	openErr              error
}

func newFakeKind() *fakeKind {
	return &fakeKind{opens: map[string]int{}, polls: map[string]int{}, closes: map[string]int{}}
}

func (k *fakeKind) kind() sources.Kind {
	return sources.Kind{
		NewConfig: func() sources.Config { return &fakeConfig{} },
		Open: func(cfg sources.Config) (sources.Source, error) {
			k.mu.Lock()
			defer k.mu.Unlock()
			if k.openErr != nil {
				return nil, k.openErr
			}
			conn := cfg.Connection()
			k.opens[conn]++
			return &fakeSource{k: k, conn: conn}, nil
		},
	}
}

type fakeSource struct {
	k    *fakeKind
	conn string
}

func (s *fakeSource) Poll(_ context.Context, cfgs []sources.Config) []sources.Sample {
	s.k.mu.Lock()
	s.k.polls[s.conn]++
	s.k.mu.Unlock()
	out := make([]sources.Sample, len(cfgs))
	for i, c := range cfgs {
		out[i] = c.(*fakeConfig).sample()
	}
	return out
}

func (s *fakeSource) Close() error {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	s.k.closes[s.conn]++
	return nil
}

func (k *fakeKind) count(m map[string]int, conn string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return m[conn]
}

// waitFor polls cond until it holds, or fails the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fakeTrigger(t *testing.T, reg sources.Registry, name, conn, value string) sources.Trigger {
	t.Helper()
	tr, err := reg.Parse(sources.Params{Type: "fake", Name: name, Metadata: map[string]string{"conn": conn, "value": value}})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestPoolBatchesByConnection(t *testing.T) {
	k := newFakeKind()
	reg := sources.Registry{"fake": k.kind()}
	pool := sources.NewPool(reg)
	defer pool.Close()
	triggers := []sources.Trigger{
		fakeTrigger(t, reg, "a1", "a", "1"),
		fakeTrigger(t, reg, "b1", "b", "2"),
		fakeTrigger(t, reg, "a2", "a", "3"),
	}
	for range 2 {
		got := pool.Poll(context.Background(), triggers)
		for i, want := range []float64{1, 2, 3} {
			if got[i].Err != nil || got[i].Value != want {
				t.Fatalf("sample %d = %+v, want value %v", i, got[i], want)
			}
		}
	}
	if k.opens["a"] != 1 || k.opens["b"] != 1 {
		t.Errorf("opens = %v, want one per connection", k.opens)
	}
	if k.polls["a"] != 2 || k.polls["b"] != 2 {
		t.Errorf("polls = %v, want one per connection per round", k.polls)
	}
	pool.Prune(triggers[:1])
	if pool.Len() != 1 {
		t.Errorf("after pruning b: open = %d, want 1", pool.Len())
	}
	waitFor(t, "b closed", func() bool { return k.count(k.closes, "b") == 1 })
	if k.count(k.closes, "a") != 0 {
		t.Errorf("after pruning b: closes = %v", k.closes)
	}
	pool.Close()
	if k.closes["a"] != 1 || pool.Len() != 0 {
		t.Errorf("after Close: closes = %v, open = %d", k.closes, pool.Len())
	}
}

func TestPoolSanitizesValues(t *testing.T) {
	k := newFakeKind()
	reg := sources.Registry{"fake": k.kind()}
	tests := []struct {
		name      string
		value     float64
		wantValue float64
		wantErr   bool
	}{
		{name: "finite passes", value: 4.5, wantValue: 4.5},
		{name: "0 passes", value: 0, wantValue: 0},
		{name: "negative is an error, not 0", value: -3, wantErr: true},
		{name: "NaN is an error", value: math.NaN(), wantErr: true},
		{name: "infinity is an error", value: math.Inf(1), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := sources.NewPool(reg)
			defer pool.Close()
			tr := fakeTrigger(t, reg, "x", "c", "0")
			tr.Config.(*fakeConfig).Value = tt.value
			got := pool.Poll(context.Background(), []sources.Trigger{tr})[0]
			if (got.Err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", got.Err, tt.wantErr)
			}
			if !tt.wantErr && got.Value != tt.wantValue {
				t.Fatalf("value = %v, want %v", got.Value, tt.wantValue)
			}
			if tt.wantErr && !strings.Contains(got.Err.Error(), `trigger "x"`) {
				t.Fatalf("error does not name the trigger: %v", got.Err)
			}
		})
	}
}

func TestPoolRetriesAFailedOpen(t *testing.T) {
	k := newFakeKind()
	k.openErr = errors.New("no route")
	reg := sources.Registry{"fake": k.kind()}
	pool := sources.NewPool(reg)
	defer pool.Close()
	tr := fakeTrigger(t, reg, "x", "c", "2")
	if got := pool.Poll(context.Background(), []sources.Trigger{tr})[0]; got.Err == nil || !strings.Contains(got.Err.Error(), "no route") {
		t.Fatalf("err = %v, want the open error", got.Err)
	}
	k.openErr = nil
	if got := pool.Poll(context.Background(), []sources.Trigger{tr})[0]; got.Err != nil || got.Value != 2 {
		t.Fatalf("after the broker is reachable: %+v", got)
	}
}

func TestParseUnknownType(t *testing.T) {
	reg := sources.Registry{"fake": newFakeKind().kind()}
	_, err := reg.Parse(sources.Params{Type: "sqs", Name: "q"})
	var ce *sources.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), `trigger "q": type: unknown trigger type "sqs" (known: fake)`) {
		t.Fatalf("err = %v", err)
	}
}

// panickyKind's sources panic where told to, as a source might on a broker answer it did
// not expect.
type panickyKind struct {
	*fakeKind
	inOpen, inPoll, inClose bool
}

type panickySource struct {
	fakeSource
	k *panickyKind
}

func (s *panickySource) Poll(ctx context.Context, cfgs []sources.Config) []sources.Sample {
	if s.k.inPoll {
		panic(fmt.Sprintf("index %d out of range", -len(cfgs))) // as an index a hostile answer supplied would
	}
	return s.fakeSource.Poll(ctx, cfgs)
}

func (s *panickySource) Close() error {
	if s.k.inClose {
		panic("close failed")
	}
	return s.fakeSource.Close()
}

func TestPoolTurnsAPanicIntoThatPollsError(t *testing.T) {
	tests := []struct {
		name                    string
		inOpen, inPoll, inClose bool
	}{
		{name: "panic in Poll", inPoll: true},
		{name: "panic in Open", inOpen: true},
		{name: "panic in Poll and Close", inPoll: true, inClose: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &panickyKind{fakeKind: newFakeKind(), inOpen: tt.inOpen, inPoll: tt.inPoll, inClose: tt.inClose}
			reg := sources.Registry{"fake": {
				NewConfig: func() sources.Config { return &fakeConfig{} },
				Open: func(cfg sources.Config) (sources.Source, error) {
					if k.inOpen {
						panic("open failed")
					}
					src, err := k.kind().Open(cfg)
					return &panickySource{fakeSource: *src.(*fakeSource), k: k}, err
				},
			}}
			var panics atomic.Int64
			pool := sources.NewPool(reg, sources.OnPanic(func(typ string, _ any, stack []byte) {
				if typ != "fake" || len(stack) == 0 {
					t.Errorf("a panic was reported for type %q with %d bytes of stack", typ, len(stack))
				}
				panics.Add(1)
			}))
			bad := fakeTrigger(t, reg, "bad", "hostile", "1")
			good := fakeTrigger(t, reg, "good", "fine", "2")
			got := pool.Poll(context.Background(), []sources.Trigger{bad, good})
			if !errors.Is(got[0].Err, sources.ErrSourcePanicked) || !strings.Contains(got[0].Err.Error(), `trigger "bad"`) {
				t.Errorf("the panicking trigger's sample = %+v, want ErrSourcePanicked naming it", got[0])
			}
			if tt.inOpen {
				if got[1].Err == nil {
					t.Errorf("every open panics here, the other trigger too: %+v", got[1])
				}
			}
			if panics.Load() == 0 {
				t.Error("the panic was not reported")
			}
			k.inOpen, k.inPoll = false, false
			again := pool.Poll(context.Background(), []sources.Trigger{bad})
			if again[0].Err != nil || again[0].Value != 1 {
				t.Errorf("the next poll, with a broker that answers well, = %+v", again[0])
			}
			pool.Close()
		})
	}
}

// blockingSource's Close waits until released, as a broker that is slow to hang up.
type blockingSource struct{ release chan struct{} }

func (blockingSource) Poll(_ context.Context, cfgs []sources.Config) []sources.Sample {
	return make([]sources.Sample, len(cfgs))
}

func (s blockingSource) Close() error {
	<-s.release
	return nil
}

func TestPruneDoesNotWaitForASlowClose(t *testing.T) {
	release := make(chan struct{})
	reg := sources.Registry{"fake": {
		NewConfig: func() sources.Config { return &fakeConfig{} },
		Open:      func(sources.Config) (sources.Source, error) { return blockingSource{release}, nil },
	}}
	pool := sources.NewPool(reg)
	tr := fakeTrigger(t, reg, "x", "slow", "0")
	pool.Poll(context.Background(), []sources.Trigger{tr})
	pruned := make(chan struct{})
	go func() {
		pool.Prune(nil)
		close(pruned)
	}()
	select {
	case <-pruned:
	case <-time.After(10 * time.Second):
		t.Fatal("Prune waited for the source to close")
	}
	if pool.Len() != 0 {
		t.Errorf("pool holds %d sources after Prune, want 0", pool.Len())
	}
	closed := make(chan struct{})
	go func() {
		pool.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned before the source closed")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-closed
}
