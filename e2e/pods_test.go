//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/qscale/qscale/e2e/controlplane"
)

// TestPodLifecycle: on a control plane with a pod start-up delay (kube-scheduler and kwok), a
// Deployment scaled from 0 to 3 gets 3 pods that are bound to the fake Node and Pending, not
// Ready, until the delay has passed, then Running and Ready (readyReplicas 3); scaled to 1, two
// of them are deleted and the third stays Ready. A pod template with a delay of its own starts
// that much later.
func TestPodLifecycle(t *testing.T) {
	t.Parallel()
	const delay, slowDelay = 5 * time.Second, 10 * time.Second
	c := newCluster(t, controlplane.Options{PodStartDelay: delay})
	ns := c.namespace("pods")
	createDeployment(t, c.kube, controlplane.Deployment(ns, "w", 0, nil))
	slow := controlplane.Deployment(ns, "slow", 1, nil)
	slow.Spec.Template.Annotations = map[string]string{controlplane.PodStartDelayAnnotation: slowDelay.String()}

	up := time.Now()
	createDeployment(t, c.kube, slow)
	deploymentScaleIn(t, c.kube, ns, "w", 3)
	seen := c.waitPodsReady(t, ns, "w", 3, up, delay+60*time.Second)
	for name, s := range seen {
		checkStartUp(t, name, s, delay)
	}
	for name, s := range c.waitPodsReady(t, ns, "slow", 1, up, slowDelay+60*time.Second) {
		checkStartUp(t, name, s, slowDelay)
	}

	down := time.Now()
	deploymentScaleIn(t, c.kube, ns, "w", 1)
	left := c.waitPodsGone(t, ns, "w", 1, 30*time.Second)
	t.Logf("scaled to 1: two pods deleted within %.1fs", time.Since(down).Seconds())
	if _, ok := seen[left.Name]; !ok || !controlplane.PodReady(&left) {
		t.Errorf("the pod left, %s, is not one of the three Ready pods (ready: %v)", left.Name, controlplane.PodReady(&left))
	}
}

// checkStartUp checks that a pod was seen starting, then Ready no sooner than delay after the
// scale-up and not long after, and that kwok counted about delay from the pod's start time to
// its Ready condition.
func checkStartUp(t testing.TB, name string, s *podSeen, delay time.Duration) {
	t.Helper()
	t.Logf("pod %s: seen starting at %.1fs and Ready at %.1fs after the scale-up; by the API's timestamps (whole seconds) started to Ready %s, created to Ready %s",
		name, s.starting.Seconds(), s.ready.Seconds(), s.startedToReady, s.createdToReady)
	switch {
	case s.starting == 0 || s.starting >= s.ready:
		t.Errorf("pod %s was never seen starting (Pending, bound, not Ready) before it was Ready", name)
	case s.ready < delay:
		t.Errorf("pod %s was Ready %s after the scale-up, before its start-up delay of %s", name, s.ready, delay)
	case s.ready > delay+20*time.Second: // a generous bound: the machine is shared
		t.Errorf("pod %s was Ready %s after the scale-up, far beyond its start-up delay of %s", name, s.ready, delay)
	case s.startedToReady < delay-time.Second || s.startedToReady > delay+3*time.Second:
		t.Errorf("pod %s was Ready %s after its start time, want its start-up delay of %s", name, s.startedToReady, delay)
	}
}

// podSeen is when a test first saw a pod starting and Ready, measured from one moment, and
// what the pod's own timestamps say.
type podSeen struct {
	starting, ready time.Duration
	startedToReady  time.Duration // the Ready condition's time less status.startTime
	createdToReady  time.Duration // the Ready condition's time less the creation time
}

// waitPodsReady waits until the Deployment name has n pods, all Ready, and readyReplicas n,
// and returns when each pod was first seen starting (bound to the fake Node, Pending, not
// Ready) and Ready, measured from since.
func (c *cluster) waitPodsReady(t testing.TB, ns, name string, n int32, since time.Time, timeout time.Duration) map[string]*podSeen {
	t.Helper()
	seen := map[string]*podSeen{}
	var readyReplicas int32
	err := waitUntil(context.Background(), timeout, func() (bool, error) {
		pods, err := c.kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return false, nil // a transient API error: try again
		}
		now := time.Since(since)
		for i := range pods.Items {
			notePod(seen, &pods.Items[i], now)
		}
		d, err := c.kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		readyReplicas = d.Status.ReadyReplicas
		return len(pods.Items) == int(n) && readyReplicas == n && allReady(seen), nil
	})
	if err != nil {
		t.Fatalf("%s/%s: readyReplicas %d, want %d after %s: %v\npods seen: %d\nkwok log:\n%s\nkube-scheduler log:\n%s",
			ns, name, readyReplicas, n, timeout, err, len(seen), c.cp.Tail("kwok", 20), c.cp.Tail("kube-scheduler", 20))
	}
	return seen
}

// notePod records when p was first seen starting and first seen Ready.
func notePod(seen map[string]*podSeen, p *corev1.Pod, now time.Duration) {
	s := seen[p.Name]
	if s == nil {
		s = &podSeen{}
		seen[p.Name] = s
	}
	ready := controlplane.PodReady(p)
	if s.starting == 0 && !ready && p.Spec.NodeName == controlplane.NodeName && p.Status.Phase == corev1.PodPending && p.Status.PodIP != "" {
		s.starting = now
	}
	if s.ready == 0 && ready {
		s.ready = now
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && p.Status.StartTime != nil {
				s.startedToReady = cond.LastTransitionTime.Sub(p.Status.StartTime.Time)
				s.createdToReady = cond.LastTransitionTime.Sub(p.CreationTimestamp.Time)
			}
		}
	}
}

func allReady(seen map[string]*podSeen) bool {
	for _, s := range seen {
		if s.ready == 0 {
			return false
		}
	}
	return true
}

// waitPodsGone waits until the Deployment name has n pods, none of them being deleted, and
// returns the first.
func (c *cluster) waitPodsGone(t testing.TB, ns, name string, n int, timeout time.Duration) corev1.Pod {
	t.Helper()
	var pods *corev1.PodList
	err := waitUntil(context.Background(), timeout, func() (bool, error) {
		var err error
		if pods, err = c.kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + name}); err != nil {
			return false, nil
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				return false, nil
			}
		}
		return len(pods.Items) == n, nil
	})
	if err != nil || pods == nil || len(pods.Items) == 0 {
		t.Fatalf("%s/%s: not %d pods after %s: %v\nkwok log:\n%s", ns, name, n, timeout, err, c.cp.Tail("kwok", 20))
	}
	return pods.Items[0]
}
