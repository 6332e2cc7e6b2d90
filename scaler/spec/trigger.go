package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/qscale/qscale/sources"
)

// The fields of a trigger, KEDA's names. metricType and useCachedMetrics are KEDA's and are
// read only to refuse the values whose meaning qscale does not keep.
const (
	fieldType              = "type"
	fieldName              = "name"
	fieldMetadata          = "metadata"
	fieldAuthenticationRef = "authenticationRef"
	fieldMetricType        = "metricType"
	fieldUseCachedMetrics  = "useCachedMetrics"
)

var triggerFields = map[string]bool{
	fieldType: true, fieldName: true, fieldMetadata: true, fieldAuthenticationRef: true,
	fieldMetricType: true, fieldUseCachedMetrics: true,
}

// triggerDecoder reads one entry of qscale.io/triggers field by field, so that every problem
// of every trigger is reported, each naming its trigger, rather than one decoding error for
// the whole list.
type triggerDecoder struct {
	label    string // "[index] (name)", as problems name the trigger
	problems []Problem
}

func (d *triggerDecoder) add(field, format string, args ...any) {
	d.problems = append(d.problems, Problem{Annotation: AnnotationTriggers, Field: d.label + "." + field, Message: fmt.Sprintf(format, args...)})
}

// decodeTrigger reads entry i of the list. Name is left empty when not given; ok is false
// when the entry is not a map at all.
func decodeTrigger(i int, raw json.RawMessage) (t TriggerSpec, problems []Problem, ok bool) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return t, []Problem{{Annotation: AnnotationTriggers, Field: fmt.Sprintf("[%d]", i),
			Message: "must be a map with type, metadata and optionally name and authenticationRef, got " + jsonKind(raw)}}, false
	}
	d := &triggerDecoder{label: fmt.Sprintf("[%d]", i)}
	d.text(fields, fieldType, &t.Type)
	d.text(fields, fieldName, &t.Name)
	name := t.Name
	if name == "" {
		name = defaultTriggerName(t.Type, i)
	}
	d.label = fmt.Sprintf("[%d] (%s)", i, name)
	if v, ok := fields[fieldMetadata]; ok {
		if err := json.Unmarshal(v, &t.Metadata); err != nil {
			d.add(fieldMetadata, "%v", err)
		}
	}
	if v, ok := fields[fieldAuthenticationRef]; ok {
		t.AuthenticationRef = d.authenticationRef(v)
	}
	d.metricType(fields[fieldMetricType])
	d.useCachedMetrics(fields[fieldUseCachedMetrics])
	for _, key := range sortedKeys(fields) {
		if !triggerFields[key] {
			d.add(key, "unknown field: a trigger has type, name, metadata, authenticationRef, metricType and useCachedMetrics%s", sources.Suggest(key, triggerFields))
		}
	}
	return t, d.problems, true
}

func defaultTriggerName(typ string, i int) string { return fmt.Sprintf("%s-%d", typ, i) }

// text reads a string field. type and name are read before the trigger's label is known, so
// their problems name the trigger by its index only.
func (d *triggerDecoder) text(fields map[string]json.RawMessage, key string, into *string) {
	d.textAt(fields, key, key, into)
}

// textAt reads the string field key of fields, which problems name by path within the trigger.
func (d *triggerDecoder) textAt(fields map[string]json.RawMessage, key, path string, into *string) {
	v, ok := fields[key]
	if !ok || bytes.Equal(v, []byte("null")) {
		return
	}
	if err := json.Unmarshal(v, into); err != nil {
		d.add(path, "must be a string, got %s", jsonKind(v))
	}
}

// metricType accepts KEDA's AverageValue, which is how qscale serves every trigger: the HPA
// divides the value by the replicas and aims at the threshold per replica.
func (d *triggerDecoder) metricType(raw json.RawMessage) {
	if raw == nil || bytes.Equal(raw, []byte("null")) {
		return
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		d.add(fieldMetricType, "must be a string, got %s", jsonKind(raw))
		return
	}
	switch v {
	case "", "AverageValue":
	case "Value":
		d.add(fieldMetricType, "Value is not supported: qscale serves every trigger as an AverageValue metric (the threshold is per replica); remove metricType or set AverageValue, and set the threshold per replica")
	case "Utilization":
		d.add(fieldMetricType, "Utilization is for KEDA's cpu and memory triggers, which qscale does not have: remove metricType or set AverageValue")
	default:
		d.add(fieldMetricType, "must be AverageValue (what qscale serves) or left out, got %q", v)
	}
}

// useCachedMetrics accepts true: qscale always serves the value of its last poll, and an HPA
// request never reaches the broker. KEDA's false, a broker request per HPA request, it
// refuses rather than quietly doing otherwise.
func (d *triggerDecoder) useCachedMetrics(raw json.RawMessage) {
	if raw == nil || bytes.Equal(raw, []byte("null")) {
		return
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			d.add(fieldUseCachedMetrics, "must be true or false, got %s", jsonKind(raw))
			return
		}
		if b, err = strconv.ParseBool(strings.TrimSpace(s)); err != nil {
			d.add(fieldUseCachedMetrics, "must be true or false, got %q", s)
			return
		}
	}
	if !b {
		d.add(fieldUseCachedMetrics, "false is not supported: qscale always serves the value of its last poll and never reads the broker for an HPA request; remove useCachedMetrics or set it to true")
	}
}

// jsonKind names the kind of a JSON value, for messages that must not quote it.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "a map"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
