package spec

import (
	"errors"
	"fmt"

	"github.com/qscale/qscale/sources"
)

// SecretLookup returns the data of a Secret in the workload's namespace.
type SecretLookup func(name string) (map[string]string, error)

// ErrSecretNotFound is returned by a SecretLookup for a Secret that does not exist.
var ErrSecretNotFound = errors.New("not found")

// ErrSecretUnavailable is returned by a SecretLookup that cannot see Secrets at all (an
// offline check): parameters the Secret could supply are then not reported missing.
var ErrSecretUnavailable = errors.New("unavailable")

// Compile parses every trigger's parameters through reg, with the parameters its
// authenticationRef supplies from Secrets (see AuthenticationRef). Every Secret it names is
// looked up, once, even when another is missing, so that a caller recording the lookups knows
// every Secret the configuration depends on. Every problem of every trigger is reported at
// once, in an *Error. A trigger without a type, which ParseSpec reports, is skipped.
func (s *Spec) Compile(reg sources.Registry, secrets SecretLookup) ([]sources.Trigger, error) {
	lookup := memoize(secrets)
	var problems []Problem
	out := make([]sources.Trigger, 0, len(s.Triggers))
	for i, t := range s.Triggers {
		if t.Type == "" {
			continue // ParseSpec reported it: there is nothing to parse the parameters as
		}
		prefix := fmt.Sprintf("[%d] (%s)", i, t.Name)
		auth, authProblems, err := resolveAuth(t, prefix, reg, lookup)
		if err != nil {
			return nil, err
		}
		problems = append(problems, authProblems...)
		tr, err := reg.Parse(sources.Params{Type: t.Type, Name: t.Name, Metadata: t.Metadata, Secret: auth.data})
		var ce *sources.ConfigError
		switch {
		case errors.As(err, &ce):
			for _, fp := range ce.Problems {
				if fp.Missing && auth.mayHave(fp.Param) {
					continue
				}
				field := prefix + ".metadata." + fp.Param
				if fp.Param == "type" {
					field = prefix + ".type"
				}
				problems = append(problems, Problem{AnnotationTriggers, field, fp.Problem})
			}
		case err != nil:
			return nil, err
		default:
			out = append(out, tr)
		}
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return out, nil
}
