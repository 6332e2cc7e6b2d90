//go:build tools

// Package tools pins the Kubernetes control plane that the end-to-end tests and the demo
// build from Go modules: kube-apiserver and kube-controller-manager.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
