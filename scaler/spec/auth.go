package spec

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/qscale/qscale/sources"
)

// The fields of authenticationRef and of one of its secretTargetRef entries, KEDA's names.
const (
	fieldSecretTargetRef = "secretTargetRef"
	fieldParameter       = "parameter"
	fieldKey             = "key"
)

var (
	authenticationRefFields = map[string]bool{fieldName: true, fieldSecretTargetRef: true}
	secretTargetRefFields   = map[string]bool{fieldParameter: true, fieldName: true, fieldKey: true}
)

// authenticationRef reads KEDA's authenticationRef: the name of a Secret whose keys are the
// trigger's parameters, KEDA's secretTargetRef mappings, or both. That one of them is given
// is checked by ParseSpec, which knows the trigger's final name.
func (d *triggerDecoder) authenticationRef(raw json.RawMessage) *AuthenticationRef {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		d.add(fieldAuthenticationRef, "must be a map with the name of a Secret or a secretTargetRef list, got %s", jsonKind(raw))
		return nil
	}
	ref := &AuthenticationRef{}
	d.textAt(fields, fieldName, fieldAuthenticationRef+"."+fieldName, &ref.Name)
	if v, ok := fields[fieldSecretTargetRef]; ok {
		ref.SecretTargetRef = d.secretTargetRefs(v)
	}
	for _, key := range sortedKeys(fields) {
		switch {
		case authenticationRefFields[key]:
		case key == "kind":
			d.add(fieldAuthenticationRef+".kind", "qscale reads Secrets, not a KEDA TriggerAuthentication: remove kind, and either name the Secret "+
				"whose keys are the trigger's parameters (username, password, …) or copy the TriggerAuthentication's secretTargetRef "+
				"into authenticationRef (qscale import-keda converts it)")
		default:
			d.add(fieldAuthenticationRef+"."+key, "unknown field: authenticationRef has name and secretTargetRef%s", sources.Suggest(key, authenticationRefFields))
		}
	}
	return ref
}

// secretTargetRefs reads the secretTargetRef list. Every entry is kept, complete or not, so
// that Compile names each by its index; Compile skips those this reports incomplete.
func (d *triggerDecoder) secretTargetRefs(raw json.RawMessage) []SecretTargetRef {
	path := fieldAuthenticationRef + "." + fieldSecretTargetRef
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		d.add(path, "must be a list of entries with parameter, name and key, got %s", jsonKind(raw))
		return nil
	}
	out := make([]SecretTargetRef, len(items))
	first := map[string]int{} // the entry that first supplies each parameter
	for j, item := range items {
		at := fmt.Sprintf("%s[%d]", path, j)
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(item, &fields); err != nil || fields == nil {
			d.add(at, "must be a map with parameter, name and key, got %s", jsonKind(item))
			continue
		}
		m := &out[j]
		d.textAt(fields, fieldParameter, at+"."+fieldParameter, &m.Parameter)
		d.textAt(fields, fieldName, at+"."+fieldName, &m.Name)
		d.textAt(fields, fieldKey, at+"."+fieldKey, &m.Key)
		for _, key := range sortedKeys(fields) {
			if !secretTargetRefFields[key] {
				d.add(at+"."+key, "unknown field: a secretTargetRef entry has parameter, name and key%s", sources.Suggest(key, secretTargetRefFields))
			}
		}
		for _, f := range []struct{ field, value, what string }{
			{fieldParameter, m.Parameter, "the trigger parameter that the Secret's key supplies"},
			{fieldName, m.Name, "a Secret in the workload's namespace"},
			{fieldKey, m.Key, "the key of that Secret"},
		} {
			if f.value == "" {
				d.add(at+"."+f.field, "is required: %s", f.what)
			}
		}
		if m.Parameter == "" {
			continue
		}
		if k, dup := first[m.Parameter]; dup {
			d.add(at+"."+fieldParameter, "%q is also supplied by secretTargetRef[%d]: each parameter has one source", m.Parameter, k)
			continue
		}
		first[m.Parameter] = j
	}
	return out
}

// complete reports whether every field of the mapping is set; ParseSpec reported those that
// are not.
func (m SecretTargetRef) complete() bool {
	return m.Parameter != "" && m.Name != "" && m.Key != ""
}

// authParams is what a trigger's authenticationRef supplies.
type authParams struct {
	data map[string]string
	// unseenAll: the Secret that name names cannot be seen (an offline check), so it may
	// supply any parameter; unseen: the parameters whose mapped Secret cannot be seen.
	unseenAll bool
	unseen    map[string]bool
}

// mayHave reports whether a Secret that could not be read may supply param, which is then
// not reported missing.
func (a authParams) mayHave(param string) bool { return a.unseenAll || a.unseen[param] }

// resolveAuth reads the Secrets of a trigger's authenticationRef: the keys of the Secret that
// name names, then each secretTargetRef mapping over them. A missing Secret or key is a
// Problem; the parameters it would supply are then not reported missing as well, since the
// Problem already says why. Other lookup errors are returned.
func resolveAuth(t TriggerSpec, prefix string, reg sources.Registry, lookup SecretLookup) (authParams, []Problem, error) {
	r := &authResolver{prefix: prefix + ".authenticationRef", lookup: lookup}
	ref := t.AuthenticationRef
	if ref == nil {
		return r.a, nil, nil
	}
	r.a.data = map[string]string{} // never the lookup's map, which mappings would change
	if ref.Name != "" {
		if err := r.named(ref.Name); err != nil {
			return r.a, nil, err
		}
	}
	var known map[string]bool // read only when there are mappings: it builds a config
	for j, m := range ref.SecretTargetRef {
		if !m.complete() {
			continue
		}
		at := fmt.Sprintf(".secretTargetRef[%d]", j)
		if known == nil {
			known = reg.Params(t.Type)
		}
		if known != nil && !known[m.Parameter] { // nil: an unknown type, which Parse reports
			r.add(at+".parameter", "%q is not a parameter of a %s trigger%s", m.Parameter, t.Type, sources.Suggest(m.Parameter, known))
		}
		if err := r.mapping(at, m); err != nil {
			return r.a, nil, err
		}
	}
	return r.a, r.problems, nil
}

// authResolver collects what one authenticationRef supplies, and its problems.
type authResolver struct {
	prefix   string // the trigger's authenticationRef, as problems name it
	lookup   SecretLookup
	a        authParams
	problems []Problem
}

func (r *authResolver) add(field, format string, args ...any) {
	r.problems = append(r.problems, Problem{AnnotationTriggers, r.prefix + field, fmt.Sprintf(format, args...)})
}

// named reads the Secret whose keys are parameters.
func (r *authResolver) named(name string) error {
	data, err := r.lookup(name)
	switch {
	case errors.Is(err, ErrSecretUnavailable):
		r.a.unseenAll = true
	case errors.Is(err, ErrSecretNotFound):
		r.a.unseenAll = true
		r.add(".name", "Secret %q does not exist in the workload's namespace", name)
	case err != nil:
		return fmt.Errorf("reading Secret %q: %w", name, err)
	}
	for k, v := range data {
		r.a.data[k] = v
	}
	return nil
}

// mapping reads the key of one secretTargetRef entry into its parameter.
func (r *authResolver) mapping(at string, m SecretTargetRef) error {
	data, err := r.lookup(m.Name)
	switch {
	case errors.Is(err, ErrSecretUnavailable):
		r.a.markUnseen(m.Parameter)
		return nil
	case errors.Is(err, ErrSecretNotFound):
		r.a.markUnseen(m.Parameter)
		r.add(at+".name", "Secret %q does not exist in the workload's namespace", m.Name)
		return nil
	case err != nil:
		return fmt.Errorf("reading Secret %q: %w", m.Name, err)
	}
	v, ok := data[m.Key]
	if !ok {
		r.a.markUnseen(m.Parameter)
		r.add(at+".key", "Secret %q has no key %q", m.Name, m.Key)
		return nil
	}
	r.a.data[m.Parameter] = v
	return nil
}

func (a *authParams) markUnseen(param string) {
	if a.unseen == nil {
		a.unseen = map[string]bool{}
	}
	a.unseen[param] = true
}

// memoize reads each Secret once per Compile, however many triggers and mappings name it,
// so that a caller recording the names it is asked for records each once.
func memoize(lookup SecretLookup) SecretLookup {
	type result struct {
		data map[string]string
		err  error
	}
	seen := map[string]result{}
	return func(name string) (map[string]string, error) {
		if r, ok := seen[name]; ok {
			return r.data, r.err
		}
		data, err := lookup(name)
		seen[name] = result{data, err}
		return data, err
	}
}
