//go:build tools

// Package tools pins the Kubernetes control-plane programs that hack/build-tools.sh
// builds into bin/: kube-apiserver and kubectl from k8s.io/kubernetes, and etcd.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
