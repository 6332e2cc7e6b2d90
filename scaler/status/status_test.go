package status

import (
	"strings"
	"testing"
	"time"
)

var (
	t0     = time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	later  = t0.Add(90*time.Second + 400*time.Millisecond)
	orders = []Trigger{{Name: "orders", Type: "kafka", Target: "50"}}
)

func ptr[T any](v T) *T { return &v }

// at is a Status whose conditions all changed at t.
func at(t time.Time, s Status) *Status {
	s.Since = Since{Ready: t, Active: t, Fallback: t, Paused: t}
	return &s
}

func TestNext(t *testing.T) {
	laterSecond := later.Truncate(time.Second)
	tests := []struct {
		name string
		prev *Status
		o    Observation
		want Status
	}{
		{
			name: "first status of a valid workload: every condition since now, to the second",
			o:    Observation{Triggers: orders, Observed: "d1"},
			want: *at(laterSecond, Status{Ready: true, Triggers: orders, Observed: "d1"}),
		},
		{
			name: "never valid: not ready with the reason, no triggers",
			o:    Observation{Problem: "qscale.io/triggers: [0] (kafka-0).metadata.consumerGroup: is required", Observed: "d1"},
			want: *at(laterSecond, Status{Reason: "qscale.io/triggers: [0] (kafka-0).metadata.consumerGroup: is required", Observed: "d1"}),
		},
		{
			name: "unchanged state keeps every since",
			prev: at(t0, Status{Ready: true, Active: true, Triggers: orders, Observed: "d1"}),
			o:    Observation{Active: true, Triggers: orders, Observed: "d1"},
			want: *at(t0, Status{Ready: true, Active: true, Triggers: orders, Observed: "d1"}),
		},
		{
			name: "becoming active moves only active's since",
			prev: at(t0, Status{Ready: true, Triggers: orders, Observed: "d1"}),
			o:    Observation{Active: true, Triggers: orders, Observed: "d1"},
			want: Status{Ready: true, Active: true, Triggers: orders, Observed: "d1",
				Since: Since{Ready: t0, Active: laterSecond, Fallback: t0, Paused: t0}},
		},
		{
			name: "fallback starts",
			prev: at(t0, Status{Ready: true, Active: true, Triggers: orders, Observed: "d1"}),
			o:    Observation{Fallback: true, Triggers: orders, Observed: "d1"},
			want: Status{Ready: true, Fallback: true, Triggers: orders, Observed: "d1",
				Since: Since{Ready: t0, Active: laterSecond, Fallback: laterSecond, Paused: t0}},
		},
		{
			name: "paused at replicas",
			prev: at(t0, Status{Ready: true, Triggers: orders, Observed: "d1"}),
			o:    Observation{Paused: true, PausedReplicas: ptr[int32](2), Triggers: orders, Observed: "d2"},
			want: Status{Ready: true, Paused: true, PausedReplicas: ptr[int32](2), Triggers: orders, Observed: "d2",
				Since: Since{Ready: t0, Active: t0, Fallback: t0, Paused: laterSecond}},
		},
		{
			name: "paused-replicas changed while paused keeps paused's since",
			prev: at(t0, Status{Ready: true, Paused: true, PausedReplicas: ptr[int32](2), Triggers: orders, Observed: "d2"}),
			o:    Observation{Paused: true, PausedReplicas: ptr[int32](5), Triggers: orders, Observed: "d3"},
			want: *at(t0, Status{Ready: true, Paused: true, PausedReplicas: ptr[int32](5), Triggers: orders, Observed: "d3"}),
		},
		{
			name: "paused-replicas is not told when not paused",
			o:    Observation{PausedReplicas: ptr[int32](5), Observed: "d1"},
			want: *at(laterSecond, Status{Ready: true, Observed: "d1"}),
		},
		{
			name: "a valid workload that breaks keeps its triggers, with a new reason",
			prev: at(t0, Status{Ready: true, Triggers: orders, Observed: "d1"}),
			o:    Observation{Problem: "qscale.io/max-replicas: must be an integer", Triggers: orders, Observed: "d4"},
			want: Status{Reason: "qscale.io/max-replicas: must be an integer", Triggers: orders, Observed: "d4",
				Since: Since{Ready: laterSecond, Active: t0, Fallback: t0, Paused: t0}},
		},
		{
			name: "another reason while still not ready keeps ready's since",
			prev: at(t0, Status{Reason: "a", Observed: "d1"}),
			o:    Observation{Problem: "b", Observed: "d2"},
			want: *at(t0, Status{Reason: "b", Observed: "d2"}),
		},
		{
			name: "triggers not read yet: active and fallback as they were",
			prev: at(t0, Status{Ready: true, Active: true, Fallback: true, Triggers: orders, Observed: "d1"}),
			o:    Observation{Unread: true, Triggers: orders, Observed: "d1"},
			want: *at(t0, Status{Ready: true, Active: true, Fallback: true, Triggers: orders, Observed: "d1"}),
		},
		{
			name: "triggers not read yet, and no status before: neither active nor in fallback",
			o:    Observation{Unread: true, Triggers: orders, Observed: "d1"},
			want: *at(laterSecond, Status{Ready: true, Triggers: orders, Observed: "d1"}),
		},
		{
			name: "a status without times (edited by hand) gets them",
			prev: &Status{Ready: true},
			o:    Observation{Observed: "d1"},
			want: *at(laterSecond, Status{Ready: true, Observed: "d1"}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Next(tt.prev, tt.o, later)
			if got.Encode() != tt.want.Encode() {
				t.Fatalf("got  %s\nwant %s", got.Encode(), tt.want.Encode())
			}
			again, err := Parse(got.Encode())
			if err != nil {
				t.Fatal(err)
			}
			if next := Next(again, tt.o, later.Add(time.Hour)); next.Encode() != got.Encode() {
				t.Errorf("the same state an hour later is another status:\n%s\n%s", next.Encode(), got.Encode())
			}
		})
	}
}

func TestNextCapsTheReason(t *testing.T) {
	long := strings.Repeat("é", ReasonLimit)
	got := Next(nil, Observation{Problem: long}, t0)
	if len(got.Reason) > ReasonLimit || !strings.HasSuffix(got.Reason, "…") {
		t.Fatalf("reason of %d bytes ending %q", len(got.Reason), got.Reason[len(got.Reason)-6:])
	}
	if !strings.HasPrefix(got.Reason, "éé") || strings.ContainsRune(got.Reason, '\uFFFD') {
		t.Errorf("the cut broke a character")
	}
}

func TestEncodeIsCompact(t *testing.T) {
	s := Next(nil, Observation{Active: true, Triggers: []Trigger{{Name: "orders", Type: "kafka", Target: "50"}, {Name: "age", Type: "rabbitmq", TargetBacklogAge: "30s"}}, Observed: "0123456789abcdef"}, t0)
	want := `{"ready":true,"active":true,"fallback":false,"paused":false,` +
		`"since":{"ready":"2026-12-07T03:00:00Z","active":"2026-12-07T03:00:00Z","fallback":"2026-12-07T03:00:00Z","paused":"2026-12-07T03:00:00Z"},` +
		`"triggers":[{"name":"orders","type":"kafka","target":"50"},{"name":"age","type":"rabbitmq","targetBacklogAge":"30s"}],"observed":"0123456789abcdef"}`
	if got := s.Encode(); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := s.LastTransition(); !got.Equal(t0) {
		t.Errorf("last transition %v", got)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{name: "what Encode writes", in: Next(nil, Observation{}, t0).Encode()},
		{name: "fields of a newer qscale are ignored", in: `{"ready":true,"since":{},"observed":"x","later":1}`},
		{name: "not JSON", in: "ready", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %t", err, tt.wantErr)
			}
		})
	}
}
