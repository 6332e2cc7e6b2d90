package spec

import (
	"sort"
	"strings"
)

// Problem is one thing wrong with a workload's annotations.
type Problem struct {
	Annotation string `json:"annotation,omitempty"` // "" for a problem of the manifest, not of an annotation
	Field      string `json:"field,omitempty"`      // within the annotation; "" for the annotation as a whole
	Message    string `json:"message"`
}

func (p Problem) String() string {
	if p.Annotation == "" {
		return p.Message
	}
	if p.Field == "" {
		return p.Annotation + ": " + p.Message
	}
	return p.Annotation + ": " + p.Field + ": " + p.Message
}

// Error reports every problem of a workload's annotations. It is a user error: only an
// edit of the annotations (or of a Secret they name) can fix it.
type Error struct{ Problems []Problem }

func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// SortProblems orders problems by annotation, keeping the order within one annotation: the
// order of an Error's problems.
func SortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Annotation < ps[j].Annotation })
}
