#!/usr/bin/env bash
# kind end-to-end run (make e2e): create a kind cluster (kind-config.yaml), build the image and
# load it into the cluster, install the chart with charts/kube-gtm/ci/kind-values.yaml, run the
# e2e crate's cluster tests, and delete the cluster, also on failure after dumping pod logs,
# descriptions and events.
#
# usage: e2e.sh [--check-only]
#   --check-only  only say whether the e2e can run here (make test prints this line)
# env: IMAGE (kube-gtm:e2e), KIND_CLUSTER (kube-gtm-e2e), E2E_KEEP_CLUSTER=1 keeps the cluster.
#
# Without docker (and its daemon), kind, kubectl or helm it prints one line and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"

image=${IMAGE:-kube-gtm:e2e}
cluster=${KIND_CLUSTER:-kube-gtm-e2e}
release=kube-gtm
namespace=kube-gtm
dns_addr=127.0.0.1:30053 # kind-config.yaml maps node port 30053 (UDP and TCP) here

missing=()
command -v docker >/dev/null 2>&1 || missing+=(docker)
command -v kind >/dev/null 2>&1 || missing+=(kind)
command -v kubectl >/dev/null 2>&1 || missing+=(kubectl)
command -v helm >/dev/null 2>&1 || missing+=(helm)
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "e2e: skipped: ${missing[*]} not found (make e2e needs docker, kind, kubectl and helm)"
  exit 0
fi
if ! docker info >/dev/null 2>&1; then
  echo "e2e: skipped: docker found but its daemon is not reachable (make e2e needs a running docker)"
  exit 0
fi
if [[ ${1:-} == --check-only ]]; then
  echo "e2e: docker and kind found: run 'make e2e' for the kind cluster tests"
  exit 0
fi

work=$(mktemp -d)
# A kubeconfig of its own: the run never changes the user's current context.
export KUBECONFIG="$work/kubeconfig"

dump_diagnostics() {
  echo "---- e2e failed: cluster state ----"
  kubectl get nodes -o wide || true
  kubectl get all,configmaps,leases,gtm -A -o wide || true
  for ns in $(kubectl get ns -o jsonpath='{.items[*].metadata.name}'); do
    case $ns in kube-system | kube-public | kube-node-lease | local-path-storage) continue ;; esac
    echo "---- namespace $ns: describe pods ----"
    kubectl -n "$ns" describe pods || true
    echo "---- namespace $ns: logs ----"
    for pod in $(kubectl -n "$ns" get pods -o name); do
      kubectl -n "$ns" logs "$pod" --all-containers --prefix --tail=500 || true
      kubectl -n "$ns" logs "$pod" --all-containers --prefix --tail=200 --previous 2>/dev/null || true
    done
    echo "---- namespace $ns: events ----"
    kubectl -n "$ns" get events --sort-by=.lastTimestamp || true
  done
}

cleanup() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then dump_diagnostics; fi
  if [[ ${E2E_KEEP_CLUSTER:-} == 1 ]]; then
    echo "e2e: keeping cluster $cluster (KUBECONFIG=$KUBECONFIG)"
  else
    kind delete cluster --name "$cluster" --kubeconfig "$KUBECONFIG" || true
    rm -rf "$work"
  fi
  if [[ $rc -eq 0 ]]; then echo "e2e: passed"; else echo "e2e: FAILED (exit $rc)"; fi
  exit "$rc"
}
trap cleanup EXIT

echo "e2e: creating kind cluster $cluster"
kind create cluster --name "$cluster" --config kind-config.yaml --kubeconfig "$KUBECONFIG" --wait 180s

IMAGE=$image ./scripts/build-images.sh
kind load docker-image "$image" --name "$cluster"

chart_args=(
  charts/kube-gtm
  --namespace "$namespace"
  -f charts/kube-gtm/ci/kind-values.yaml
  --set "image.repository=${image%:*}"
  --set "image.tag=${image##*:}"
)
echo "e2e: installing the chart"
helm install "$release" "${chart_args[@]}" --create-namespace --wait --timeout 5m

# What the tests need to know about the installation (e2e/src/env.rs reads these).
export GTM_E2E=1
export GTM_E2E_RELEASE=$release
export GTM_E2E_NAMESPACE=$namespace
export GTM_E2E_DNS=$dns_addr
export GTM_E2E_IMAGE=$image
export GTM_E2E_CHART_ARGS="${chart_args[*]}"

# Tests that share the installation, each in its own namespace, then the release lifecycle
# (upgrade with answers flowing, uninstall), which must run alone and last.
cargo test -p e2e --test cluster -- --ignored --test-threads=2
cargo test -p e2e --test lifecycle -- --ignored --test-threads=1
