package sources_test

import (
	"context"
	"strings"
	"testing"

	"github.com/qscale/qscale/sources"
)

// echoSource answers each config with its own Value.
type echoSource struct{}

func (echoSource) Poll(_ context.Context, cfgs []*fakeConfig) []sources.Sample {
	out := make([]sources.Sample, len(cfgs))
	for i, c := range cfgs {
		out[i] = c.sample()
	}
	return out
}

func (echoSource) Close() error { return nil }

func TestNewKindAdaptsATypedSource(t *testing.T) {
	kind := sources.NewKind(func(*fakeConfig) (echoSource, error) { return echoSource{}, nil })
	if _, ok := kind.NewConfig().(*fakeConfig); !ok {
		t.Fatalf("NewConfig returns %T", kind.NewConfig())
	}
	src, err := kind.Open(&fakeConfig{Conn: "c"})
	if err != nil {
		t.Fatal(err)
	}
	got := src.Poll(context.Background(), []sources.Config{&fakeConfig{Value: 3}, &otherConfig{}, &fakeConfig{Value: 5}})
	if got[0].Value != 3 || got[2].Value != 5 || got[0].Err != nil || got[2].Err != nil {
		t.Errorf("samples %+v, want 3 and 5 in order", got)
	}
	if got[1].Err == nil || !strings.Contains(got[1].Err.Error(), "cannot poll") {
		t.Errorf("a config of another type: %+v, want an error for it alone", got[1])
	}
	if _, err := kind.Open(&otherConfig{}); err == nil {
		t.Error("opening a source for another config type should fail")
	}
}

type otherConfig struct{}

func (*otherConfig) Connection() string             { return "o" }
func (*otherConfig) Target() float64                { return 1 }
func (*otherConfig) Validate() []sources.FieldError { return nil }
