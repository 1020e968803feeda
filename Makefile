# payment-operator: build, test, generate and deploy. `make help` lists the targets.

# Image to build and deploy.
IMG ?= payment-operator:dev
# Container tool for docker-build.
CONTAINER_TOOL ?= docker
# Name of the kind cluster for the kind-* targets.
KIND_CLUSTER ?= payment-operator
KIND ?= kind

LOCALBIN := $(CURDIR)/bin
CONTROLLER_GEN := $(LOCALBIN)/controller-gen
KUSTOMIZE := $(LOCALBIN)/kustomize
KUBECTL := $(LOCALBIN)/kubectl
GOLANGCI_LINT := $(LOCALBIN)/golangci-lint

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRDs and the manager's ClusterRole from the markers in the code.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: controller-gen ## Generate the DeepCopy methods of the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: verify-generated
verify-generated: manifests generate ## Fail when the committed generated files are stale.
	@git diff --exit-code -- api config/crd config/rbac || { echo "generated files are stale: run 'make generate manifests' and commit the result" >&2; exit 1; }

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

.PHONY: test
test: control-plane kustomize build ## Run every test: unit, integration against a real API server, end to end with the built binaries.
	KUBEBUILDER_ASSETS=$(LOCALBIN) go test -count=1 -timeout 30m ./...

.PHONY: test-e2e
test-e2e: control-plane kustomize build ## Run only the end-to-end tests with the built binaries and kubectl.
	KUBEBUILDER_ASSETS=$(LOCALBIN) go test -count=1 -timeout 30m -v ./test/e2e/...

FUZZ_TIME ?= 15s
.PHONY: fuzz
fuzz: ## Run each fuzz target for $(FUZZ_TIME) (the seed corpus also runs in make test).
	go test -run '^$$' -fuzz '^FuzzVerifyCallback$$' -fuzztime $(FUZZ_TIME) ./psp/simulator/
	go test -run '^$$' -fuzz '^FuzzParseCallback$$' -fuzztime $(FUZZ_TIME) ./psp/simulator/

.PHONY: bench
bench: ## Run the benchmarks (callback verification and parsing, the transition function).
	go test -run '^$$' -bench . -benchmem ./psp/... ./internal/...

##@ Build

.PHONY: build
build: ## Build the manager and the PSP simulator into bin/.
	hack/build-binaries.sh $(LOCALBIN)

.PHONY: demo
demo: control-plane build kustomize ## Run the operator end to end on a local control plane with the PSP simulator.
	go build -o $(LOCALBIN)/demo ./hack/demo
	$(LOCALBIN)/demo

.PHONY: run
run: manifests generate ## Run the manager against the cluster of the current kubeconfig.
	go run ./cmd/manager --leader-elect=false

.PHONY: docker-build
docker-build: ## Build the container image.
	$(CONTAINER_TOOL) build -t $(IMG) .

##@ Deployment

.PHONY: install
install: manifests kustomize kubectl ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: manifests kustomize kubectl ## Remove the CRDs, and with them every Payment, from the cluster.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: deploy
deploy: manifests kustomize kubectl ## Deploy the operator with image $(IMG) into the cluster.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: kustomize kubectl ## Remove the operator from the cluster.
	$(KUSTOMIZE) build config/default | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: build-installer
build-installer: manifests kustomize ## Render everything into dist/install.yaml.
	mkdir -p dist
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default > dist/install.yaml

.PHONY: kind-create
kind-create: ## Create a kind cluster named $(KIND_CLUSTER).
	$(KIND) create cluster --name $(KIND_CLUSTER)

.PHONY: kind-load
kind-load: docker-build ## Load the image into the kind cluster.
	$(KIND) load docker-image $(IMG) --name $(KIND_CLUSTER)

.PHONY: kind-deploy
kind-deploy: manifests kustomize kubectl kind-load ## Deploy the operator and the PSP simulator into the kind cluster.
	cd config/kind && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/kind | $(KUBECTL) apply --server-side -f -

##@ Tools (built from Go modules under hack/tools, only when missing or re-pinned)

.PHONY: control-plane
control-plane: ## Build kube-apiserver, etcd and kubectl.
	hack/build-tools.sh etcd kube-apiserver kubectl

.PHONY: controller-gen
controller-gen: ## Build controller-gen.
	hack/build-tools.sh controller-gen

.PHONY: kustomize
kustomize: ## Build kustomize.
	hack/build-tools.sh kustomize

.PHONY: kubectl
kubectl: ## Build kubectl.
	hack/build-tools.sh kubectl

.PHONY: golangci-lint
golangci-lint: ## Build golangci-lint.
	hack/build-tools.sh golangci-lint
