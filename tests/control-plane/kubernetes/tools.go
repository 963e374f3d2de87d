//go:build tools

// Package tools pins kube-apiserver, kube-controller-manager and kube-scheduler, built for
// midihub's local control plane (scripts/control-plane), at the release go.mod requires.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
