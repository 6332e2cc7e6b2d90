package policy

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"
)

var errBroker = errors.New("broker down")

// A backlog-age trigger fed whatever a broker may claim (counters that jump, go down or
// disagree with the backlog, more ready replicas than replicas, polls at the same instant,
// failures) never asks for a replica count outside [0, max-replicas], never serves a negative
// or non-finite value, and never panics.
func FuzzBacklogAgeTrigger(f *testing.F) {
	f.Add([]byte{10, 0, 4, 0, 0, 0, 3, 3, 0, 10, 0, 200, 0, 100, 0, 50, 3, 3, 0, 10})
	f.Add([]byte{255, 255, 255, 255, 255, 255, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 40, 2, 2, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 2, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := Spec{MinReplicas: 0, MaxReplicas: 50, PollingInterval: 2 * time.Second, CooldownPeriod: time.Minute,
			FallbackReplicas: 3, FallbackFailures: 2, ScaleUpTolerance: DefaultTolerance, ScaleDownTolerance: DefaultTolerance}
		tr := NewAgeTrigger(BacklogAge{Target: 30 * time.Second, PollingInterval: s.PollingInterval})
		w := NewWorkload(s, t0, tr)
		at := t0
		var produced, consumed float64
		replicas := int32(1)
		for len(data) >= 10 {
			p := data[:10]
			data = data[10:]
			// Counters move by a signed step: a broker may count down as well as up.
			produced = max(0, produced+step(p[0:]))
			consumed = max(0, consumed+step(p[2:]))
			backlog := float64(binary.LittleEndian.Uint16(p[4:]))
			o := Observation{Poll: Poll{Time: at, Backlog: backlog, Produced: produced, Consumed: consumed,
				Consumers: int32(p[6] % 8), Ready: int32(p[7]), Replicas: replicas}}
			if p[8]&1 == 1 {
				o.Err = errBroker
			}
			tr.Observe(o)
			d := w.Decide(at, replicas, replicas)
			if d.Desired < 0 || d.Desired > s.MaxReplicas {
				t.Fatalf("desired %d outside [0, %d]", d.Desired, s.MaxReplicas)
			}
			for _, m := range d.Metrics {
				if m.Milli < 0 || math.IsNaN(m.Raw) || math.IsInf(m.Raw, 0) || m.Raw < 0 {
					t.Fatalf("served %+v", m)
				}
			}
			if n, ok := tr.Rates().Replicas(); ok && (math.IsNaN(n) || math.IsInf(n, 0) || n < 0) {
				t.Fatalf("Replicas() = %v", n)
			}
			if d.ScaleTo != nil {
				replicas = *d.ScaleTo
			} else {
				replicas = d.Desired
			}
			at = at.Add(time.Duration(p[9]) * 100 * time.Millisecond) // 0 to 25.5 s, 0 included
		}
	})
}

// step reads two bytes as a counter's move: −32,768,000 to +32,767,000.
func step(b []byte) float64 { return (float64(binary.LittleEndian.Uint16(b)) - 32768) * 1e3 }
