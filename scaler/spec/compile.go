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

// Compile parses every trigger's parameters through reg, with the data of the Secret its
// authenticationRef names. Every problem of every trigger is reported at once, in an *Error.
// A trigger without a type, which ParseSpec reports, is skipped.
func (s *Spec) Compile(reg sources.Registry, secrets SecretLookup) ([]sources.Trigger, error) {
	var problems []Problem
	out := make([]sources.Trigger, 0, len(s.Triggers))
	for i, t := range s.Triggers {
		if t.Type == "" {
			continue // ParseSpec reported it: there is nothing to parse the parameters as
		}
		prefix := fmt.Sprintf("[%d] (%s)", i, t.Name)
		var data map[string]string
		lenient := false
		if t.AuthenticationRef != nil {
			var err error
			data, err = secrets(t.AuthenticationRef.Name)
			switch {
			case errors.Is(err, ErrSecretUnavailable):
				lenient = true
			case errors.Is(err, ErrSecretNotFound):
				problems = append(problems, Problem{AnnotationTriggers, prefix + ".authenticationRef",
					fmt.Sprintf("Secret %q does not exist in the workload's namespace", t.AuthenticationRef.Name)})
				continue
			case err != nil:
				return nil, fmt.Errorf("reading Secret %q: %w", t.AuthenticationRef.Name, err)
			}
		}
		tr, err := reg.Parse(sources.Params{Type: t.Type, Name: t.Name, Metadata: t.Metadata, Secret: data})
		var ce *sources.ConfigError
		switch {
		case errors.As(err, &ce):
			for _, fp := range ce.Problems {
				if lenient && fp.Missing {
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
