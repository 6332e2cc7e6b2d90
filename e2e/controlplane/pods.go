package controlplane

import (
	"context"
	_ "embed" // the Stages kwok plays
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/qscale/qscale/internal/loopback"
)

// NodeName is the fake Node that every pod runs on when Options.PodStartDelay is set.
const NodeName = "kwok-node"

// PodStartDelayAnnotation on a pod (put it on a workload's pod template) replaces
// Options.PodStartDelay for that pod with a Go duration such as "45s".
const PodStartDelayAnnotation = "pod-ready.stage.kwok.x-k8s.io/delay"

// kwokNodeAnnotation marks the Nodes kwok plays the kubelet of.
const kwokNodeAnnotation = "kwok.x-k8s.io/node"

//go:embed kwok-stages.yaml
var kwokStages string

// startPodLifecycle creates the fake Node and starts kwok, which plays its kubelet with the
// Stages that make a pod Ready PodStartDelay after kwok first sees it, and kube-scheduler,
// which binds pods to the Node. It returns once both are up and the Node is Ready.
func (cp *ControlPlane) startPodLifecycle(ctx context.Context, o Options, p pki, server string) error {
	kube, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	if err := createNode(ctx, kube); err != nil {
		return err
	}
	kwokConfig := filepath.Join(o.Dir, "kwok.kubeconfig")
	if err := p.kubeconfig(kwokConfig, server, "kwok"); err != nil {
		return err
	}
	stages := filepath.Join(o.Dir, "kwok-stages.yaml")
	ms := strconv.FormatInt(o.PodStartDelay.Milliseconds(), 10)
	if err := os.WriteFile(stages, []byte(strings.ReplaceAll(kwokStages, "POD_START_DELAY_MS", ms)), 0o600); err != nil {
		return err
	}
	err = cp.run(filepath.Join(o.BinDir, "kwok"), "kwok", []string{
		"--kubeconfig=" + kwokConfig, "--config=" + stages,
		"--manage-nodes-with-annotation-selector=" + kwokNodeAnnotation + "=fake",
		"--cidr=10.244.0.0/16", "--node-ip=10.255.255.2",
	}, []string{"PATH=/usr/bin:/bin", "HOME=" + o.Dir}) // kwok reads ~/.kwok/kwok.yaml and KWOK_* variables
	if err != nil {
		return err
	}
	// kwok starts while kube-scheduler does.
	schedConfig := filepath.Join(o.Dir, "scheduler.kubeconfig")
	if err := p.kubeconfig(schedConfig, server, "scheduler"); err != nil {
		return err
	}
	if err := cp.startScheduler(ctx, o.BinDir, schedConfig); err != nil {
		return err
	}
	if err := waitNodeReady(ctx, kube); err != nil {
		return fmt.Errorf("kwok has not made Node %s Ready (see %s): %w", NodeName, cp.log("kwok"), err)
	}
	return nil
}

// startScheduler starts kube-scheduler and waits until it is healthy. It serves its health
// check on a port picked free a moment before, which another process may take meanwhile: it
// is started again on another port when its log says so.
func (cp *ControlPlane) startScheduler(ctx context.Context, bin, kubeconfig string) error {
	for attempt := 1; ; attempt++ {
		ports, err := loopback.FreePorts(1)
		if err != nil {
			return err
		}
		logged := cp.logSize("kube-scheduler")
		cmd, err := cp.start(filepath.Join(bin, "kube-scheduler"), "kube-scheduler", []string{
			"--kubeconfig=" + kubeconfig, "--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
			"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(ports[0]), "--leader-elect=false",
		}, os.Environ())
		if err != nil {
			return err
		}
		health := fmt.Sprintf("https://127.0.0.1:%d/healthz", ports[0])
		err = cp.waitServing(ctx, "kube-scheduler", logged, health)
		if err == nil {
			cp.procs = append(cp.procs, cmd)
			return nil
		}
		StopProcess(cmd, 10*time.Second)
		if !errors.Is(err, errAddressInUse) || attempt == 3 {
			return fmt.Errorf("kube-scheduler not healthy (see %s): %w", cp.log("kube-scheduler"), err)
		}
	}
}

var errAddressInUse = errors.New("address already in use")

// waitServing waits until url answers 200, or the component logs after offset that its port
// was taken, or ctx ends.
func (cp *ControlPlane) waitServing(ctx context.Context, name string, offset int64, url string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		for ctx.Err() == nil {
			if strings.Contains(cp.logSince(name, offset), errAddressInUse.Error()) {
				cancel(errAddressInUse)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	err := waitHTTP(ctx, url, nil)
	if cause := context.Cause(ctx); errors.Is(cause, errAddressInUse) {
		return cause
	}
	return err
}

// createNode creates the fake Node, with room for any number of pods. The API server's
// TaintNodesByCondition admission gives a new Node the not-ready taint, which only the node
// lifecycle controller takes off; that controller is not run (it would also evict pods from a
// Node whose kubelet sends no heartbeats), so the taint is removed here.
func createNode(ctx context.Context, kube kubernetes.Interface) error {
	room := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1k"),
		corev1.ResourceMemory: resource.MustParse("1Ti"),
		corev1.ResourcePods:   resource.MustParse("100k"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        NodeName,
			Labels:      map[string]string{corev1.LabelHostname: NodeName, corev1.LabelOSStable: "linux", "type": "kwok"},
			Annotations: map[string]string{kwokNodeAnnotation: "fake"},
		},
		Status: corev1.NodeStatus{Allocatable: room, Capacity: room},
	}
	if _, err := kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating Node %s: %w", NodeName, err)
	}
	_, err := kube.CoreV1().Nodes().Patch(ctx, NodeName, types.MergePatchType, []byte(`{"spec":{"taints":null}}`), metav1.PatchOptions{})
	return err
}

// waitNodeReady waits until the fake Node is Ready: kwok is up and plays its kubelet.
func waitNodeReady(ctx context.Context, kube kubernetes.Interface) error {
	var last error
	for {
		n, err := kube.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if last = err; err == nil {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// PodReady reports whether a pod's Ready condition is true.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
