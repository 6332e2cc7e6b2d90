package sources

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Decode fills the struct that dst points to from a trigger's metadata and the data of its
// authentication Secret, as declared by each exported field's `param` tag:
//
//		Field T `param:"name[,required][,secret][,default=V][,enum=a|b][,min=N][,positive]"`
//
//	  - name is the parameter name, KEDA's spelling.
//	  - required: the parameter must be set.
//	  - secret: the parameter may come only from the Secret, never from metadata.
//	  - default=V: the value used when the parameter is not set, parsed like a set value.
//	  - enum=a|b: the allowed values (for string and []string fields).
//	  - min=N: numbers and durations must be at least N; positive: they must be above 0.
//
// The fields of an embedded struct without a `param` tag (BacklogAge, say) are parameters of
// the struct that embeds it, so that parameters every trigger type shares are declared once.
//
// A key of the Secret supplies the parameter of the same name and wins over metadata; keys of
// the Secret that name no parameter are ignored, so one Secret can serve several triggers. An
// empty or blank value counts as not set. Supported field types are string, bool, int, int64,
// float64, time.Duration, []string (comma-separated) and any type whose pointer implements
// encoding.TextUnmarshaler. Decode reports every problem, never echoing a secret's value.
// A field whose value is refused is left as if the parameter were not set (its default, or
// zero), so that a Config's Validate can still check the other parameters together.
// A malformed tag is a programming error and panics.
func Decode(dst any, metadata, secret map[string]string) []FieldError {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("sources.Decode: want a pointer to a struct, got %T", dst))
	}
	specs := paramSpecs(v.Elem().Type())
	var problems []FieldError
	known := make(map[string]bool, len(specs))
	for _, s := range specs {
		known[s.name] = true
		raw, fromSecret, set := lookup(s.name, metadata, secret)
		if set && s.secret && !fromSecret {
			problems = append(problems, FieldError{Param: s.name, Problem: "is secret: put it in the Secret named by authenticationRef, not in metadata"})
			continue
		}
		if !set {
			if s.required {
				problems = append(problems, FieldError{Param: s.name, Problem: "is required", Missing: true})
				continue
			}
			if !s.hasDefault {
				continue
			}
			raw = s.def
		}
		field := v.Elem().FieldByIndex(s.index)
		if fs, ok := field.Addr().Interface().(FromSecretSetter); ok {
			fs.SetFromSecret(fromSecret)
		}
		if problem := s.set(field, raw); problem != "" {
			if !s.secret {
				problem += fmt.Sprintf(", got %q", raw)
			}
			problems = append(problems, FieldError{Param: s.name, Problem: problem})
			s.reset(field)
		}
	}
	problems = append(problems, unknownParams(metadata, known)...)
	return problems
}

// Names returns the parameter names declared by the struct that cfg points to, in field order.
func Names(cfg any) []string {
	specs := paramSpecs(reflect.TypeOf(cfg).Elem())
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	return names
}

func lookup(name string, metadata, secret map[string]string) (raw string, fromSecret, set bool) {
	if v := strings.TrimSpace(secret[name]); v != "" {
		return v, true, true
	}
	if v := strings.TrimSpace(metadata[name]); v != "" {
		return v, false, true
	}
	return "", false, false
}

// unknownParams reports metadata keys that no parameter declares: a misspelt parameter
// silently falling back to its default is the costliest kind of configuration mistake.
func unknownParams(metadata map[string]string, known map[string]bool) []FieldError {
	var problems []FieldError
	for key := range metadata {
		if known[key] {
			continue
		}
		problems = append(problems, FieldError{Param: key, Problem: "unknown parameter" + Suggest(key, known)})
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Param < problems[j].Param })
	return problems
}

// Suggest returns ` (did you mean "name"?)` for the known name closest to key, when it is close
// enough to be a typo, and "" otherwise.
func Suggest(key string, known map[string]bool) string {
	best, bestDist := "", 3
	for name := range known {
		d := editDistance(strings.ToLower(key), strings.ToLower(name))
		if d < bestDist || (d == bestDist && best != "" && name < best) {
			best, bestDist = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

type paramSpec struct {
	index      []int // of the field, through embedded structs
	name       string
	required   bool
	secret     bool
	hasDefault bool
	def        string
	enum       []string
	hasMin     bool
	min        float64
	positive   bool
}

func paramSpecs(t reflect.Type) []paramSpec {
	var specs []paramSpec
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("param")
		if !ok {
			if f.Anonymous && f.Type.Kind() == reflect.Struct && f.IsExported() {
				for _, s := range paramSpecs(f.Type) {
					s.index = append([]int{i}, s.index...)
					specs = append(specs, s)
				}
			}
			continue
		}
		s := parseTag(tag)
		s.index = []int{i}
		specs = append(specs, s)
	}
	return specs
}

func parseTag(tag string) paramSpec {
	parts := strings.Split(tag, ",")
	s := paramSpec{name: parts[0]}
	for _, opt := range parts[1:] {
		key, val, _ := strings.Cut(opt, "=")
		switch key {
		case "required":
			s.required = true
		case "secret":
			s.secret = true
		case "default":
			s.hasDefault, s.def = true, val
		case "enum":
			s.enum = strings.Split(val, "|")
		case "min":
			f, err := strconv.ParseFloat(val, 64)
			if err != nil {
				panic(fmt.Sprintf("param %s: bad min %q", s.name, val))
			}
			s.hasMin, s.min = true, f
		case "positive":
			s.positive = true
		default:
			panic(fmt.Sprintf("param %s: unknown tag option %q", s.name, opt))
		}
	}
	return s
}

var durationType = reflect.TypeFor[time.Duration]()

// reset leaves f as if its parameter were not set: its default, or zero. A default that is
// itself refused is a programming error that the field's tests catch; f is then zero.
func (s paramSpec) reset(f reflect.Value) {
	f.Set(reflect.Zero(f.Type()))
	if s.hasDefault && s.set(f, s.def) != "" {
		f.Set(reflect.Zero(f.Type()))
	}
}

// set parses raw into f and returns a problem description, or "" when raw is acceptable.
func (s paramSpec) set(f reflect.Value, raw string) string {
	if u, ok := f.Addr().Interface().(encoding.TextUnmarshaler); ok {
		if err := u.UnmarshalText([]byte(raw)); err != nil {
			return err.Error()
		}
		return ""
	}
	if f.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return "must be a duration such as 500ms or 10s"
		}
		f.SetInt(int64(d))
		return s.checkRange(d.Seconds(), "s")
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(raw)
		return s.checkEnum(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return "must be true or false"
		}
		f.SetBool(b)
		return ""
	case reflect.Slice:
		return s.setList(f, raw)
	}
	return s.setNumber(f, raw)
}

func (s paramSpec) setNumber(f reflect.Value, raw string) string {
	switch f.Kind() {
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return "must be a whole number"
		}
		f.SetInt(n)
		return s.checkRange(float64(n), "")
	case reflect.Float64:
		x, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return "must be a number"
		}
		f.SetFloat(x)
		return s.checkRange(x, "")
	}
	panic(fmt.Sprintf("param %s: unsupported type %s", s.name, f.Type()))
}

func (s paramSpec) setList(f reflect.Value, raw string) string {
	if f.Type().Elem().Kind() != reflect.String {
		panic(fmt.Sprintf("param %s: unsupported type %s", s.name, f.Type()))
	}
	items := SplitList(raw)
	for _, it := range items {
		if p := s.checkEnum(it); p != "" {
			return p
		}
	}
	f.Set(reflect.ValueOf(items))
	return ""
}

func (s paramSpec) checkEnum(v string) string {
	if len(s.enum) == 0 {
		return ""
	}
	for _, e := range s.enum {
		if v == e {
			return ""
		}
	}
	return "must be one of " + strings.Join(s.enum, ", ")
}

func (s paramSpec) checkRange(x float64, unit string) string {
	switch {
	case s.positive && x <= 0:
		return "must be greater than 0"
	case s.hasMin && x < s.min:
		return fmt.Sprintf("must be at least %s%s", strconv.FormatFloat(s.min, 'f', -1, 64), unit)
	}
	return ""
}

// SplitList splits a comma-separated parameter value, trimming blanks and dropping empty items.
func SplitList(raw string) []string {
	var out []string
	for _, it := range strings.Split(raw, ",") {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

// FromSecretSetter is implemented by parameter types that accept some values only from the
// Secret (a URL that holds a password, say). Decode tells them where the value came from
// before parsing it, so their checks can refuse a secret written in metadata.
type FromSecretSetter interface{ SetFromSecret(fromSecret bool) }

// Ignored is the type of a parameter that is accepted for compatibility with KEDA's trigger
// schema and has no effect.
type Ignored struct{}

// UnmarshalText accepts any value.
func (*Ignored) UnmarshalText([]byte) error { return nil }
