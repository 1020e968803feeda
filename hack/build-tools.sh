#!/usr/bin/env bash
# Builds the pinned tools into bin/ from the Go modules under hack/tools, each
# one only when it is missing or its pin (the module's go.mod and go.sum, and
# this script) changed. Nothing is downloaded but Go modules.
#
#   hack/build-tools.sh [TOOL...]    default: every tool
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/bin
tools=$root/hack/tools
mkdir -p "$bin"

# The version that kube-apiserver and kubectl report, read from the pin.
kube_version=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$tools/kube/go.mod" | head -n 1)
kube_minor=$(echo "$kube_version" | cut -d. -f2)
kube_ldflags="-X k8s.io/component-base/version.gitVersion=$kube_version"
kube_ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$kube_minor"
kube_ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$kube_version"

# build NAME MODULE PACKAGE [LDFLAGS] builds PACKAGE of hack/tools/MODULE into bin/NAME.
build() {
  local name=$1 module=$2 package=$3 ldflags=${4:-}
  local stamp=$bin/.$name.pin pin
  pin=$(cat "$tools/$module/go.mod" "$tools/$module/go.sum" "$0" | sha256sum | cut -d' ' -f1)
  if [[ -x $bin/$name && -f $stamp && $(cat "$stamp") == "$pin" ]]; then
    return
  fi

  echo "building bin/$name from hack/tools/$module (the first build can take minutes)" >&2
  (cd "$tools/$module" && go build -ldflags "$ldflags" -o "$bin/$name.partial" "$package")
  mv "$bin/$name.partial" "$bin/$name"
  echo "$pin" >"$stamp"
}

build_tool() {
  case $1 in
    kube-apiserver) build kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags" ;;
    kubectl) build kubectl kube k8s.io/kubernetes/cmd/kubectl "$kube_ldflags" ;;
    etcd) build etcd kube ./etcd ;;
    controller-gen) build controller-gen gen sigs.k8s.io/controller-tools/cmd/controller-gen ;;
    kustomize) build kustomize gen sigs.k8s.io/kustomize/kustomize/v5 ;;
    golangci-lint) build golangci-lint lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint ;;
    *)
      echo "unknown tool $1: expected kube-apiserver, kubectl, etcd, controller-gen, kustomize or golangci-lint" >&2
      return 2
      ;;
  esac
}

if [[ $# -eq 0 ]]; then
  set -- etcd kube-apiserver kubectl controller-gen kustomize golangci-lint
fi
for tool in "$@"; do
  build_tool "$tool"
done
