package sources

import (
	"context"
	"fmt"
)

// TypedSource is a Source written against its own config type C; NewKind adapts it.
// Its contract is Source's.
type TypedSource[C Config] interface {
	Poll(ctx context.Context, cfgs []C) []Sample
	Close() error
}

// NewKind returns the Kind of a trigger type whose configs are *T (a struct with `param`
// tags), whose connections open opens, and whose threshold parameters, which
// targetBacklogAge replaces, are thresholds. The one type assertion from Config to *T lives
// here, for every source.
func NewKind[T any, C interface {
	*T
	Config
}, S TypedSource[C]](open func(C) (S, error), thresholds ...string) Kind {
	return Kind{
		Thresholds: thresholds,
		NewConfig:  func() Config { return C(new(T)) },
		Open: func(cfg Config) (Source, error) {
			c, ok := cfg.(C)
			if !ok {
				return nil, fmt.Errorf("cannot open a source for a %T", cfg)
			}
			s, err := open(c)
			if err != nil {
				return nil, err
			}
			return typed[C]{s}, nil
		},
	}
}

// typed adapts a TypedSource to Source.
type typed[C Config] struct{ s TypedSource[C] }

func (t typed[C]) Poll(ctx context.Context, cfgs []Config) []Sample {
	out := make([]Sample, len(cfgs))
	cs := make([]C, 0, len(cfgs))
	at := make([]int, 0, len(cfgs))
	for i, cfg := range cfgs {
		c, ok := cfg.(C)
		if !ok { // the Pool groups by type: this is a programming error, kept to one trigger
			out[i].Err = fmt.Errorf("cannot poll a %T here", cfg)
			continue
		}
		cs, at = append(cs, c), append(at, i)
	}
	if len(cs) == 0 {
		return out
	}
	for j, s := range t.s.Poll(ctx, cs) {
		out[at[j]] = s
	}
	return out
}

func (t typed[C]) Close() error { return t.s.Close() }
