package scaler

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/scaler/store"
)

// DefaultSecretRefresh is how often the Secrets that triggers name are read again.
const DefaultSecretRefresh = time.Minute

// Secrets holds the Secrets that workloads' triggers name, and only those. qscale reads a
// Secret by name and never lists or watches Secrets, so it needs no right to see a Secret
// that no workload names, and holds none in memory. A Secret is read when a workload's
// configuration first names it; Refresh reads every held Secret again, which is how a
// rotated password or a Secret created after its workload is seen without a restart.
type Secrets struct {
	reader client.Reader // reads the API server, never a cache

	mu   sync.Mutex
	held map[types.NamespacedName]heldSecret
}

// heldSecret is one Secret as last read.
type heldSecret struct {
	data    map[string]string
	version string // resourceVersion; "" for a Secret that does not exist
}

// NewSecrets returns an empty Secrets that reads through reader.
func NewSecrets(reader client.Reader) *Secrets {
	return &Secrets{reader: reader, held: map[types.NamespacedName]heldSecret{}}
}

// Get returns a Secret's data and version, from memory or, the first time, from the API
// server. A Secret that does not exist has version "" and fails with spec.ErrSecretNotFound.
func (s *Secrets) Get(ctx context.Context, key types.NamespacedName) (map[string]string, string, error) {
	s.mu.Lock()
	h, ok := s.held[key]
	s.mu.Unlock()
	if !ok {
		var err error
		if h, err = s.read(ctx, key); err != nil {
			return nil, "", err
		}
		s.mu.Lock()
		s.held[key] = h
		s.mu.Unlock()
	}
	if h.version == "" {
		return nil, "", spec.ErrSecretNotFound
	}
	return h.data, h.version, nil
}

// Refresh reads again every Secret in keys, forgets the held Secrets that are not in keys,
// and returns the keys whose Secret changed (created, rotated or deleted). A Secret that
// cannot be read keeps what was held, and the error is returned with the changes found.
func (s *Secrets) Refresh(ctx context.Context, keys []types.NamespacedName) ([]types.NamespacedName, error) {
	s.mu.Lock()
	for k := range s.held {
		if !slices.Contains(keys, k) {
			delete(s.held, k)
		}
	}
	s.mu.Unlock()
	var changed []types.NamespacedName
	var errs []error
	for _, k := range keys {
		h, err := s.read(ctx, k)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		old, ok := s.held[k]
		s.held[k] = h
		s.mu.Unlock()
		if ok && old.version != h.version {
			changed = append(changed, k)
		}
	}
	return changed, errors.Join(errs...)
}

// Len returns the number of Secrets held.
func (s *Secrets) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}

func (s *Secrets) read(ctx context.Context, key types.NamespacedName) (heldSecret, error) {
	var sec corev1.Secret
	err := s.reader.Get(ctx, key, &sec)
	switch {
	case apierrors.IsNotFound(err):
		return heldSecret{}, nil
	case err != nil:
		return heldSecret{}, err
	}
	data := make(map[string]string, len(sec.Data)+len(sec.StringData))
	for k, v := range sec.Data {
		data[k] = string(v)
	}
	maps.Copy(data, sec.StringData)
	return heldSecret{data: data, version: sec.ResourceVersion}, nil
}

// secretRefresher reads the named Secrets again every interval and tells the workloads
// whose Secret changed.
type secretRefresher struct {
	secrets  *Secrets
	records  *records
	notify   func(store.Target)
	interval time.Duration
}

// Start implements manager.Runnable.
func (r secretRefresher) Start(ctx context.Context) error {
	ticker := time.NewTicker(r.interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		changed, err := r.secrets.Refresh(ctx, r.records.namedSecrets())
		if err != nil && ctx.Err() == nil {
			log.FromContext(ctx).Error(err, "reading the Secrets that triggers name")
		}
		for _, k := range changed {
			for _, t := range r.records.usingSecret(k.Namespace, k.Name) {
				r.notify(t)
			}
		}
	}
}
