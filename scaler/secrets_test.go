package scaler

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/qscale/qscale/scaler/spec"
)

// getOnly is a reader with the rights the chart grants on Secrets: get, never list.
type getOnly struct {
	client.Client
	gets int
}

func (r *getOnly) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	r.gets++
	return r.Client.Get(ctx, key, obj, opts...)
}

func (*getOnly) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("forbidden: list secrets")
}

func TestSecretsHoldOnlyWhatIsNamedAndSeeRotation(t *testing.T) {
	ctx := context.Background()
	creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "shop"}, Data: map[string][]byte{"password": []byte("pw")}}
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: "shop"}, Data: map[string][]byte{"token": []byte("t")}}
	c := fake.NewClientBuilder().WithObjects(creds, other).Build()
	r := &getOnly{Client: c}
	s := NewSecrets(r)
	key := types.NamespacedName{Namespace: "shop", Name: "creds"}
	missing := types.NamespacedName{Namespace: "shop", Name: "later"}

	data, v1, err := s.Get(ctx, key)
	if err != nil || data["password"] != "pw" || v1 == "" {
		t.Fatalf("Get = %v, %q, %v", data, v1, err)
	}
	if _, _, err := s.Get(ctx, missing); !errors.Is(err, spec.ErrSecretNotFound) {
		t.Fatalf("Get of a missing Secret: %v, want ErrSecretNotFound", err)
	}
	for range 5 {
		_, _, _ = s.Get(ctx, key)
		_, _, _ = s.Get(ctx, missing)
	}
	if r.gets != 2 || s.Len() != 2 {
		t.Fatalf("%d reads of the API server and %d Secrets held, want 2 and 2: held Secrets are read from memory", r.gets, s.Len())
	}

	creds.Data["password"] = []byte("rotated")
	if err := c.Update(ctx, creds); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "later", Namespace: "shop"}}); err != nil {
		t.Fatal(err)
	}
	changed, err := s.Refresh(ctx, []types.NamespacedName{key, missing})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(changed, func(a, b types.NamespacedName) int { return strings.Compare(a.Name, b.Name) })
	if !slices.Equal(changed, []types.NamespacedName{key, missing}) {
		t.Fatalf("changed = %v, want the rotated and the created Secret", changed)
	}
	if data, _, _ := s.Get(ctx, key); data["password"] != "rotated" {
		t.Fatalf("after a refresh the password is %q", data["password"])
	}
	if changed, _ := s.Refresh(ctx, []types.NamespacedName{key}); len(changed) != 0 || s.Len() != 1 {
		t.Fatalf("an unchanged refresh reported %v and holds %d Secrets; want none changed and the unnamed one forgotten", changed, s.Len())
	}
}
