package sources

import (
	"context"
	"errors"
	"testing"
)

func TestRoundOnConnection(t *testing.T) {
	broken := errors.New("broken")
	tests := []struct {
		name      string
		connected bool
		dialErr   error
		rounds    []error // what each round returns, in turn
		wantDials int
		wantRuns  int
		wantErr   error
	}{
		{name: "open connection, round succeeds", connected: true, rounds: []error{nil}, wantRuns: 1},
		{name: "no connection: dial, then round", rounds: []error{nil}, wantDials: 1, wantRuns: 1},
		{name: "no connection and dial fails", dialErr: broken, wantDials: 1, wantErr: broken},
		{name: "stale connection: redial and retry once", connected: true, rounds: []error{broken, nil}, wantDials: 1, wantRuns: 2},
		{name: "stale connection, retry fails too", connected: true, rounds: []error{broken, broken}, wantDials: 1, wantRuns: 2, wantErr: broken},
		{name: "fresh connection fails: no retry", rounds: []error{broken, nil}, wantDials: 1, wantRuns: 1, wantErr: broken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dials, runs := 0, 0
			dial := func(context.Context) error { dials++; return tt.dialErr }
			round := func(context.Context) (int, error) { runs++; return runs, tt.rounds[runs-1] }
			_, err := RoundOnConnection(context.Background(), tt.connected, dial, round)
			if !errors.Is(err, tt.wantErr) || dials != tt.wantDials || runs != tt.wantRuns {
				t.Errorf("err %v, %d dials, %d rounds; want %v, %d, %d", err, dials, runs, tt.wantErr, tt.wantDials, tt.wantRuns)
			}
		})
	}
}

func TestRoundOnConnectionDoesNotRetryWhenTheContextIsDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dials := 0
	round := func(context.Context) (int, error) { cancel(); return 0, context.Canceled }
	_, err := RoundOnConnection(ctx, true, func(context.Context) error { dials++; return nil }, round)
	if !errors.Is(err, context.Canceled) || dials != 0 {
		t.Errorf("err %v after %d dials; want context.Canceled and no dial", err, dials)
	}
}
