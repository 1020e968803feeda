//go:build tools

// Package tools pins the linter that hack/build-tools.sh builds into bin/:
// golangci-lint v2, which .golangci.yml at the repository root configures.
package tools

import (
	_ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
)
