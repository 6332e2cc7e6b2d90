package store

// Kinds of workload, as they appear in the qscale.io/kind label selector of a metric.
const (
	KindDeployment  = "deployment"
	KindStatefulSet = "statefulset"
)

// Target identifies a scaled workload.
type Target struct {
	Namespace string
	Kind      string // KindDeployment or KindStatefulSet
	Name      string
}

func (t Target) String() string { return t.Namespace + "/" + t.Kind + "/" + t.Name }

// MetricName is the external metric name served for a trigger.
func MetricName(trigger string) string { return "qscale-" + trigger }
