package scaler

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/qscale/qscale/scaler/spec"
)

// noteLimit is the longest Event message qscale writes. The Events API refuses a note above
// 1 kB; the margin leaves room for the recorder's own additions.
const noteLimit = 1000

// capNote shortens msg to at most limit bytes, at a character boundary, marking the cut.
func capNote(msg string, limit int) string {
	if len(msg) <= limit {
		return msg
	}
	const mark = "…"
	cut := limit - len(mark)
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + mark
}

// summary is the message of e in at most noteLimit bytes, for an Event. Every problem keeps
// its annotation and field, which say where to look; what is wrong is shortened evenly across
// the problems, and when even the places do not fit, the last ones are counted instead.
func summary(e *spec.Error) string {
	const limit = noteLimit
	if full := e.Error(); len(full) <= limit {
		return full
	}
	const sep = "; "
	places := make([]string, len(e.Problems))
	room := limit - len(sep)*(len(e.Problems)-1)
	for i, p := range e.Problems {
		places[i] = place(p)
		room -= len(places[i]) + len(": ")
	}
	if room >= 8*len(e.Problems) { // some of every message fits
		parts := make([]string, len(e.Problems))
		each := room / len(e.Problems)
		for i, p := range e.Problems {
			parts[i] = places[i] + ": " + capNote(p.Message, each)
		}
		return capNote(strings.Join(parts, sep), limit)
	}
	var b strings.Builder
	for i, place := range places {
		more := fmt.Sprintf("%s… and %d more problems", sep, len(places)-i)
		if b.Len()+len(sep)+len(place)+len(more) > limit {
			b.WriteString(more[len(sep)*boolInt(i == 0):])
			break
		}
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(place)
	}
	return capNote(b.String(), limit)
}

// place is where a problem is: its annotation and, within it, the field.
func place(p spec.Problem) string {
	if p.Field == "" {
		return p.Annotation
	}
	return p.Annotation + ": " + p.Field
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
