package scaler

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/qscale/qscale/scaler/spec"
)

func TestCapNote(t *testing.T) {
	tests := []struct {
		name, msg string
		limit     int
		want      string
	}{
		{name: "short enough", msg: "fine", limit: 10, want: "fine"},
		{name: "cut and marked", msg: strings.Repeat("a", 20), limit: 10, want: "aaaaaaa…"},
		{name: "never inside a character", msg: "aaaaaaéééé", limit: 10, want: "aaaaaa…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := capNote(tt.msg, tt.limit)
			if got != tt.want || len(got) > tt.limit || !utf8.ValidString(got) {
				t.Errorf("capNote = %q (%d bytes), want %q", got, len(got), tt.want)
			}
		})
	}
}

func TestSpecErrorSummaryKeepsTheFieldNames(t *testing.T) {
	long := strings.Repeat("x", 900)
	many := make([]spec.Problem, 80)
	for i := range many {
		many[i] = spec.Problem{Annotation: spec.AnnotationTriggers, Field: fmt.Sprintf("[%d] (t%d).metadata.lagThreshold", i, i), Message: "must be greater than 0"}
	}
	tests := []struct {
		name       string
		problems   []spec.Problem
		wantPlaces []string // each must appear whole
		wantCount  bool     // the message ends counting the problems that did not fit
	}{
		{name: "one problem with a huge message", problems: []spec.Problem{{Annotation: spec.AnnotationHPABehavior, Message: long}},
			wantPlaces: []string{"qscale.io/hpa-behavior: xxxx"}},
		{name: "three problems, one huge", problems: []spec.Problem{
			{Annotation: spec.AnnotationMaxReplicas, Message: "must be a whole number of at least 1, got \"lots\""},
			{Annotation: spec.AnnotationTriggers, Field: "[0] (orders).metadata.host", Message: long},
			{Annotation: spec.AnnotationTriggers, Field: "[1] (jobs).metadata.queueName", Message: "is required"},
		}, wantPlaces: []string{"qscale.io/max-replicas: must be", "qscale.io/triggers: [0] (orders).metadata.host: xxx", "qscale.io/triggers: [1] (jobs).metadata.queueName: is required"}},
		{name: "eighty problems", problems: many, wantPlaces: []string{"qscale.io/triggers: [0] (t0).metadata.lagThreshold"}, wantCount: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summary(&spec.Error{Problems: tt.problems})
			if len(got) > noteLimit || !utf8.ValidString(got) {
				t.Fatalf("summary of %d bytes (limit %d): %q", len(got), noteLimit, got)
			}
			for _, p := range tt.wantPlaces {
				if !strings.Contains(got, p) {
					t.Errorf("summary lacks %q: %q", p, got)
				}
			}
			if tt.wantCount != strings.Contains(got, "more problems") {
				t.Errorf("summary %q: counting the rest = %v, want %v", got, !tt.wantCount, tt.wantCount)
			}
		})
	}
}
