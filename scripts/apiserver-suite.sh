#!/usr/bin/env bash
# The real-API-server suite (run by `make test`, or alone): builds or finds the control plane
# binaries (scripts/controlplane.sh), starts etcd + kube-apiserver as local processes, runs the
# e2e crate's `apiserver` tests against them one at a time, and stops them; the control plane's
# logs are printed when a test fails. Where Go is missing it prints one line and exits 0.
#
# usage: scripts/apiserver-suite.sh [TEST FILTER...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cp=scripts/controlplane.sh

if ! command -v go >/dev/null 2>&1 && ! "$cp" build >/dev/null 2>&1; then
  echo "apiserver suite: skipped: no Go toolchain to build etcd and kube-apiserver (see README, 'Cluster mode against a real API server')"
  exit 0
fi
PATH="$HOME/.local/bin:$PATH" command -v helm >/dev/null || ./scripts/install-test-tools.sh

"$cp" build
# main is the control cluster; edge stands for a second cluster (edge DNS pods, probers, agents).
names=(main edge)
cleanup() {
  local rc=$?
  if ((rc != 0)); then
    for n in "${names[@]}"; do "$cp" logs "$n" || true; done
  fi
  for n in "${names[@]}"; do "$cp" down "$n" || true; done
  exit "$rc"
}
trap cleanup EXIT
for n in "${names[@]}"; do "$cp" up "$n"; done

# The Gateway API's Gateway CRD, for endpoint sources that name a Gateway: the real one, from the
# Go module cache (the module proxy serves sigs.k8s.io/gateway-api; nothing vendored).
gateway_api_version=v1.3.0
if command -v go >/dev/null 2>&1; then
  gateway_api_dir=$(go mod download -json "sigs.k8s.io/gateway-api@$gateway_api_version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  export GTM_GATEWAY_CRD="$gateway_api_dir/config/crd/standard/gateway.networking.k8s.io_gateways.yaml"
else
  echo "apiserver suite: no Go toolchain to fetch the Gateway API CRD; the Gateway endpoint source is not tested"
fi

export GTM_APISERVER=1
PATH="$("$cp" bin-dir):$HOME/.local/bin:$PATH"
export PATH
# One test at a time: they install Helm releases and run operators that watch every namespace.
cargo test -p e2e --test apiserver -- --test-threads=1 "$@"
