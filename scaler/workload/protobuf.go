package workload

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The API server sends built-in kinds as protobuf to clients that ask for it, as
// controller-runtime's do. These decoders read the fields the types hold and skip the rest
// unread: a pod template is one length-delimited field, passed over without allocating.
// Field numbers are those of k8s.io/api/apps/v1/generated.proto. The types have no
// protobuf encoder (TypeMeta and ObjectMeta both define one, so neither is promoted): they
// are never written whole.

// Field numbers of apps/v1 messages.
const (
	fieldMetadata = 1 // of a workload and of a list
	fieldSpec     = 2
	fieldStatus   = 3
	fieldItems    = 2 // of a list

	fieldSpecReplicas   = 1 // of DeploymentSpec and StatefulSetSpec
	fieldStatusReplicas = 2 // of DeploymentStatus and StatefulSetStatus

	fieldDeploymentReady  = 7 // DeploymentStatus.readyReplicas
	fieldStatefulSetReady = 3 // StatefulSetStatus.readyReplicas
)

// Reset empties d, as protobuf decoding does before it decodes.
func (d *Deployment) Reset() { *d = Deployment{} }

// Unmarshal decodes the protobuf encoding of an apps/v1 Deployment.
func (d *Deployment) Unmarshal(b []byte) error { return d.unmarshal(b, fieldDeploymentReady) }

// Reset empties s, as protobuf decoding does before it decodes.
func (s *StatefulSet) Reset() { *s = StatefulSet{} }

// Unmarshal decodes the protobuf encoding of an apps/v1 StatefulSet.
func (s *StatefulSet) Unmarshal(b []byte) error { return s.unmarshal(b, fieldStatefulSetReady) }

// Reset empties l, as protobuf decoding does before it decodes.
func (l *DeploymentList) Reset() { *l = DeploymentList{} }

// Unmarshal decodes the protobuf encoding of an apps/v1 DeploymentList.
func (l *DeploymentList) Unmarshal(b []byte) error {
	return unmarshalList(b, &l.ListMeta, &l.Items)
}

// Reset empties l, as protobuf decoding does before it decodes.
func (l *StatefulSetList) Reset() { *l = StatefulSetList{} }

// Unmarshal decodes the protobuf encoding of an apps/v1 StatefulSetList.
func (l *StatefulSetList) Unmarshal(b []byte) error {
	return unmarshalList(b, &l.ListMeta, &l.Items)
}

// unmarshalList decodes a list's metadata into meta and its items into items.
func unmarshalList[T any, PT interface {
	*T
	Unmarshal([]byte) error
}](b []byte, meta *metav1.ListMeta, items *[]T) error {
	return eachField(b, func(num protowire.Number, v []byte, _ uint64) error {
		switch num {
		case fieldMetadata:
			return meta.Unmarshal(v)
		case fieldItems:
			*items = append(*items, *new(T))
			return PT(&(*items)[len(*items)-1]).Unmarshal(v)
		}
		return nil
	})
}

// unmarshal decodes a workload's metadata and replica counts; ready is the field number of
// readyReplicas in the kind's status.
func (w *Workload) unmarshal(b []byte, ready protowire.Number) error {
	return eachField(b, func(num protowire.Number, v []byte, _ uint64) error {
		switch num {
		case fieldMetadata:
			return w.ObjectMeta.Unmarshal(v)
		case fieldSpec:
			return eachField(v, func(num protowire.Number, _ []byte, x uint64) error {
				if num == fieldSpecReplicas {
					r := int32(x) //nolint:gosec // protobuf's int32: the low 32 bits of the varint
					w.Spec.Replicas = &r
				}
				return nil
			})
		case fieldStatus:
			return eachField(v, func(num protowire.Number, _ []byte, x uint64) error {
				switch num {
				case fieldStatusReplicas:
					w.Status.Replicas = int32(x) //nolint:gosec // as above
				case ready:
					w.Status.ReadyReplicas = int32(x) //nolint:gosec // as above
				}
				return nil
			})
		}
		return nil
	})
}

// eachField calls fn with the number and value of each field of the message b: a
// length-delimited value as v, a varint as x. Fields of other wire types are skipped.
func eachField(b []byte, fn func(num protowire.Number, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("protobuf: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var x uint64
		read := true
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		default:
			n, read = protowire.ConsumeFieldValue(num, typ, b), false
		}
		if n < 0 {
			return fmt.Errorf("protobuf: field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if !read {
			continue
		}
		if err := fn(num, v, x); err != nil {
			return err
		}
	}
	return nil
}
