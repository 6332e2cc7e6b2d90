package scaler

import (
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
)

// records is the reconciler's own record of the workloads it configures: the last valid
// configuration, what the configuration was loaded from, and what the user was told about
// it, so that each problem is told once. The reconcilers of every kind and the Secret
// refresher share it. It is safe for concurrent use.
type records struct {
	mu sync.RWMutex
	m  map[store.Target]*record
}

type record struct {
	spec        *spec.Spec        // the last valid configuration; nil while there was none
	triggers    []sources.Trigger // its triggers, as the Store polls them
	secrets     []string          // Secrets the annotations name, valid or not
	fingerprint string            // of what the configuration was last loaded from
	problem     string            // the current configuration error, "" when valid
	note        string            // problem in at most noteLimit bytes, as Events and the status tell it
	conflict    string            // why qscale cannot own the workload's HPA, "" when it can
	rejected    string            // the spec hash of an HPA the API server refused, "" when none
	rejection   string            // why it refused it
	status      statusWrite       // the status qscale last wrote on the workload
}

// statusWrite is a status written on a workload, and the resourceVersion of the workload it
// was computed from: while the cache still holds that version, it has not seen the write.
type statusWrite struct{ from, value string }

func newRecords() *records { return &records{m: map[store.Target]*record{}} }

func (rs *records) get(t store.Target) *record { return entry(rs.m, t) }

// entry returns m's value for k, a new zero value stored there first if k has none.
func entry[K comparable, V any](m map[K]*V, k K) *V {
	v, ok := m[k]
	if !ok {
		v = new(V)
		m[k] = v
	}
	return v
}

// valid records a workload's valid configuration, and reports whether it was invalid until
// now, so that its recovery is told.
func (rs *records) valid(t store.Target, s *spec.Spec, triggers []sources.Trigger) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.get(t)
	wasInvalid := r.problem != ""
	r.spec, r.triggers, r.problem, r.note = s, triggers, "", ""
	return wasInvalid
}

// invalid records a configuration problem, and note, its summary. It reports whether the
// problem is new, so that an Event is recorded once per distinct problem. A workload that was
// valid before keeps its last valid configuration, so it keeps scaling while its annotations
// are being fixed.
func (rs *records) invalid(t store.Target, problem, note string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.get(t)
	r.note = note
	return set(&r.problem, problem)
}

// trouble says why qscale cannot apply the workload's configuration as it stands: a
// configuration error, an HPA the API server refused, or an HPA that is not qscale's; ""
// when nothing stands in the way.
func (rs *records) trouble(t store.Target) string {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	r, ok := rs.m[t]
	switch {
	case !ok:
		return ""
	case r.note != "":
		return r.note
	case r.rejection != "":
		return r.rejection
	}
	return r.conflict
}

// lastStatus returns the status last written on the workload and the resourceVersion it was
// computed from.
func (rs *records) lastStatus(t store.Target) statusWrite {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if r, ok := rs.m[t]; ok {
		return r.status
	}
	return statusWrite{}
}

// setStatus records the status written on the workload. A workload forgotten while its
// status was being written stays forgotten.
func (rs *records) setStatus(t store.Target, w statusWrite) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if r, ok := rs.m[t]; ok {
		r.status = w
	}
}

// configInvalid reports whether the workload's configuration is invalid now, its annotations
// or the HPA the API server refused, and whether the workload is known at all.
func (rs *records) configInvalid(t store.Target) (invalid, known bool) {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	r, ok := rs.m[t]
	if !ok {
		return false, false
	}
	return r.problem != "" || r.rejection != "", true
}

// current returns the workload's last valid configuration and its triggers.
func (rs *records) current(t store.Target) (*spec.Spec, []sources.Trigger) {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if r, ok := rs.m[t]; ok {
		return r.spec, r.triggers
	}
	return nil, nil
}

// setConflict records why qscale cannot own the workload's HPA ("" when it can), and reports
// whether that is news, so that an Event is recorded once per distinct conflict.
func (rs *records) setConflict(t store.Target, msg string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return set(&rs.get(t).conflict, msg) && msg != ""
}

// set sets *field to v and reports whether that changed it.
func set(field *string, v string) bool {
	if *field == v {
		return false
	}
	*field = v
	return true
}

// rejectedHPA returns the spec hash of the HPA that the API server last refused for the
// workload, "" when it refused none.
func (rs *records) rejectedHPA(t store.Target) string {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if r, ok := rs.m[t]; ok {
		return r.rejected
	}
	return ""
}

// rejectHPA records that the API server refused the HPA of spec hash with msg, and reports
// whether that is news, so that an Event is recorded once per distinct refusal.
func (rs *records) rejectHPA(t store.Target, hash, msg string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.get(t)
	news := r.rejection != msg
	r.rejected, r.rejection = hash, msg
	return news
}

// acceptHPA records that the API server took the workload's HPA, and reports whether it had
// refused one before.
func (rs *records) acceptHPA(t store.Target) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.m[t]
	if !ok || r.rejection == "" {
		return false
	}
	r.rejected, r.rejection = "", ""
	return true
}

// fingerprint returns the fingerprint recorded by setFingerprint, "" for an unknown workload.
func (rs *records) fingerprint(t store.Target) string {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if r, ok := rs.m[t]; ok {
		return r.fingerprint
	}
	return ""
}

// setFingerprint records the fingerprint of what the workload's configuration was loaded from.
func (rs *records) setFingerprint(t store.Target, fp string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.get(t).fingerprint = fp
}

// setSecrets records the Secrets a workload's annotations name.
func (rs *records) setSecrets(t store.Target, names []string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.get(t).secrets = names
}

// secretNames returns the Secrets a workload's annotations named at the last load.
func (rs *records) secretNames(t store.Target) []string {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if r, ok := rs.m[t]; ok {
		return r.secrets
	}
	return nil
}

// namedSecrets returns every Secret that some workload's annotations name, once each.
func (rs *records) namedSecrets() []types.NamespacedName {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	seen := map[types.NamespacedName]bool{}
	var out []types.NamespacedName
	for t, r := range rs.m {
		for _, name := range r.secrets {
			k := types.NamespacedName{Namespace: t.Namespace, Name: name}
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// usingSecret returns the workloads in namespace whose annotations name the Secret.
func (rs *records) usingSecret(namespace, name string) []store.Target {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	var out []store.Target
	for t, r := range rs.m {
		if t.Namespace == namespace && slices.Contains(r.secrets, name) {
			out = append(out, t)
		}
	}
	return out
}

// remove forgets a workload.
func (rs *records) remove(t store.Target) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.m, t)
}
