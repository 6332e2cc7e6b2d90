//go:build tools

// Package tools pins the Kubernetes control plane that the end-to-end tests and the demo
// build from Go modules: kube-apiserver, kube-controller-manager and kube-scheduler, and
// kwok, which plays the kubelet of fake Nodes. kwok is built here, against this release's
// client libraries, so that it shares their compiled packages rather than bring its own.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
