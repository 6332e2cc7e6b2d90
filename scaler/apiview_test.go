package scaler

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/qscale/qscale/scaler/workload"
)

// qscaleView is the client the reconciler is given in tests: it sees the objects of full, a
// fake client that holds workloads whole as client-go's types, as qscale's manager would.
// Workloads are read as the API server's JSON decoded into the workload package's types and
// then through Lean, as the cache stores them; HPAs through Lean too. A patch or a scale
// write of a workload is applied to the whole object, as the API server applies it, so that
// a test sees what a write would leave of the fields qscale never reads.
func qscaleView(t *testing.T, full client.WithWatch) client.Client {
	t.Helper()
	scheme, err := workload.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	return viewClient{WithWatch: interceptor.NewClient(full, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			target := asServed(obj)
			if err := c.Get(ctx, key, target, opts...); err != nil {
				return err
			}
			if err := decodeInto(target, obj); err != nil {
				return err
			}
			_, err := Lean(obj)
			return err
		},
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if err := c.List(ctx, list, opts...); err != nil {
				return err
			}
			return meta.EachListItem(list, func(o runtime.Object) error {
				_, err := Lean(o)
				return err
			})
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if asServed(obj) != obj {
				return fmt.Errorf("%T %s updated whole: qscale patches workloads, never updates them", obj, obj.GetName())
			}
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if asServed(obj) == obj {
				return c.Patch(ctx, obj, patch, opts...)
			}
			data, err := patch.Data(obj)
			if err != nil {
				return err
			}
			target := servedKey(obj)
			if err := c.Patch(ctx, target, client.RawPatch(patch.Type(), data), opts...); err != nil {
				return err
			}
			return decodeInto(target, obj)
		},
		SubResourceGet: func(ctx context.Context, c client.Client, sub string, obj, subObj client.Object, opts ...client.SubResourceGetOption) error {
			return c.SubResource(sub).Get(ctx, servedKey(obj), subObj, opts...)
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			// The fake client writes the object it is given with the subresource applied:
			// that must be the whole object, as the API server holds it.
			target := servedKey(obj)
			if err := c.Get(ctx, client.ObjectKeyFromObject(target), target); err != nil {
				return err
			}
			return c.SubResource(sub).Update(ctx, target, opts...)
		},
	}), scheme: scheme}
}

// viewClient names objects by qscale's scheme, in which workloads are the workload package's.
type viewClient struct {
	client.WithWatch
	scheme *runtime.Scheme
}

func (c viewClient) Scheme() *runtime.Scheme { return c.scheme }

func (c viewClient) GroupVersionKindFor(obj runtime.Object) (schema.GroupVersionKind, error) {
	return apiutil.GVKForObject(obj, c.scheme)
}

// asServed is the client-go object that the fake client holds for obj: a new one of the
// client-go type for a workload, obj itself for anything else.
func asServed(obj client.Object) client.Object {
	switch obj.(type) {
	case *workload.Deployment:
		return &appsv1.Deployment{}
	case *workload.StatefulSet:
		return &appsv1.StatefulSet{}
	}
	return obj
}

// servedKey is asServed named as obj is.
func servedKey(obj client.Object) client.Object {
	target := asServed(obj)
	target.SetNamespace(obj.GetNamespace())
	target.SetName(obj.GetName())
	return target
}

// decodeInto sets obj, a workload type, to served as the API server's JSON decodes into it.
func decodeInto(served, obj client.Object) error {
	if served == obj {
		return nil
	}
	b, err := json.Marshal(served)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, obj)
}
