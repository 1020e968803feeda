//go:build tools

// Package tools pins the code and manifest generators that hack/build-tools.sh
// builds into bin/: controller-gen and kustomize.
package tools

import (
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
	_ "sigs.k8s.io/kustomize/kustomize/v5"
)
