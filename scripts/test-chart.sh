#!/usr/bin/env bash
# Chart tests (make chart-test; part of make test and CI). Needs helm (scripts/install-helm.sh),
# kubernetes-validate and shellcheck (both installed by scripts/install-test-tools.sh).
#
# 1. shellcheck on every shell script of the repository;
# 2. helm lint --strict with the default values and each values file in charts/kube-gtm/ci/;
# 3. helm template with each of those, every object passing `kubernetes-validate --strict` for the
#    Kubernetes version the code targets (k8s-openapi feature v1_33), Prometheus Operator objects
#    checked structurally instead, plus scripts/chart_checks.py (CRD drift, the env vars against
#    docs/configuration.md, hardening, RBAC verbs, Services, alerts, the Grafana dashboard);
# 4. invalid values fail at template time with the expected message.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"
chart=charts/kube-gtm
k8s_version=${K8S_VERSION:-1.33.0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
passes=0

pass() { passes=$((passes + 1)); echo "ok   $*"; }
fail() { failures=$((failures + 1)); echo "FAIL $*"; }

for tool in helm kubernetes-validate shellcheck python3; do
  command -v "$tool" >/dev/null || { echo "test-chart: $tool not found; run scripts/install-test-tools.sh" >&2; exit 1; }
done

echo "== shellcheck"
mapfile -t scripts < <(git ls-files -co --exclude-standard -- '*.sh' .ci/run)
if shellcheck "${scripts[@]}"; then pass "shellcheck: ${scripts[*]}"; else fail "shellcheck"; fi

echo "== helm lint and template ($(helm version --short))"
profiles=("default:")
for values in "$chart"/ci/*-values.yaml; do
  name=$(basename "$values" -values.yaml)
  profiles+=("$name:$values")
done
for entry in "${profiles[@]}"; do
  name=${entry%%:*}
  values=${entry#*:}
  args=()
  [[ -n $values ]] && args=(-f "$values")
  if helm lint --strict "$chart" "${args[@]}" >"$work/lint-$name.txt" 2>&1; then
    pass "helm lint --strict ($name values)"
  else
    cat "$work/lint-$name.txt"; fail "helm lint --strict ($name values)"
  fi
  rendered="$work/$name.yaml"
  if ! helm template kube-gtm "$chart" --namespace kube-gtm "${args[@]}" >"$rendered" 2>"$work/template-$name.txt"; then
    cat "$work/template-$name.txt"; fail "helm template ($name values)"; continue
  fi
  pass "helm template ($name values)"
  if python3 scripts/chart_checks.py "$name" "$rendered"; then
    pass "chart checks ($name values)"
  else
    fail "chart checks ($name values)"
  fi
  # chart_checks.py wrote the objects kubernetes-validate has schemas for to $name.k8s.yaml.
  if kubernetes-validate --strict --quiet -k "$k8s_version" "$work/$name.k8s.yaml"; then
    pass "kubernetes-validate --strict -k $k8s_version ($name values, $(grep -c '^kind:' "$work/$name.k8s.yaml") objects)"
  else
    fail "kubernetes-validate --strict ($name values)"
  fi
done

echo "== Grafana dashboard in Grafana's namespace"
if helm template kube-gtm "$chart" --namespace kube-gtm --set metrics.grafanaDashboard.enabled=true \
    --set metrics.grafanaDashboard.namespace=monitoring --set metrics.grafanaDashboard.labelValue=1 \
    --show-only templates/grafana-dashboard.yaml >"$work/dashboard.yaml" \
  && grep -qx '  namespace: monitoring' "$work/dashboard.yaml" && grep -qx '    grafana_dashboard: "1"' "$work/dashboard.yaml"; then
  pass "metrics.grafanaDashboard.namespace and a numeric labelValue (--set ...=1) render"
else
  cat "$work/dashboard.yaml"; fail "metrics.grafanaDashboard.namespace and a numeric labelValue render"
fi

echo "== invalid values fail at template time"
# expect_failure MESSAGE HELM-ARGS...: helm template must fail and print MESSAGE.
expect_failure() {
  local message=$1
  shift
  local out
  if out=$(helm template kube-gtm "$chart" "$@" 2>&1); then
    fail "helm template $* should fail"
  elif grep -qF -- "$message" <<<"$out"; then
    pass "helm template $* fails: $message"
  else
    echo "$out"; fail "helm template $* fails without \"$message\""
  fi
}
expect_failure "at '/operator/replicas': minimum: got -1, want 0" --set operator.replicas=-1
expect_failure "at '/dns/replicas': minimum: got -1, want 0" --set dns.replicas=-1
expect_failure "at '/dns/service/type': value must be one of" --set dns.service.type=External
expect_failure "additional properties 'replica' not allowed" --set operator.replica=2
expect_failure "at '/zones': minItems" --set-json 'zones=[]'
expect_failure "at '/zones/0'" --set 'zones[0]=not a zone'
expect_failure "at '/dns/service/nodePorts/udp': minimum" --set dns.service.type=NodePort --set dns.service.nodePorts.udp=53
expect_failure "at '/dns/udpMaxPayload': maximum" --set dns.udpMaxPayload=65535
expect_failure "at '/dns/rateLimit/ipv4PrefixLength': maximum" --set dns.rateLimit.ipv4PrefixLength=33
expect_failure "at '/operator/watchNamespaces/0'" --set 'operator.watchNamespaces[0]=Bad_NS'
expect_failure "at '/image/pullPolicy'" --set image.pullPolicy=Sometimes
expect_failure "at '/metrics/grafanaDashboard/namespace'" --set metrics.grafanaDashboard.namespace=Bad_NS
expect_failure "at '/metrics/grafanaDashboard/label'" --set 'metrics.grafanaDashboard.label=not a label'
expect_failure "operator.replicas > 1 needs operator.leaderElection.enabled=true" --set operator.leaderElection.enabled=false
expect_failure "dns.geoip.enabled=true needs dns.geoip.volume" --set dns.geoip.enabled=true
expect_failure "dns.port and dns.httpPort must differ" --set dns.port=8081
expect_failure "dns.service.nodePorts are set but dns.service.type is ClusterIP" --set dns.service.type=ClusterIP --set dns.service.nodePorts.udp=30053
expect_failure "metrics.serviceMonitor.enabled=true needs metrics.service=true" --set metrics.serviceMonitor.enabled=true --set metrics.service=false
expect_failure "mode=edge needs edge.controlPlane.kubeconfigSecret" --set mode=edge --set instance=kube-gtm --set edge.controlPlane.namespace=kube-gtm
expect_failure "mode=edge needs edge.controlPlane.namespace" --set mode=edge --set instance=kube-gtm --set edge.controlPlane.kubeconfigSecret=k
expect_failure "mode=edge needs instance" --set mode=edge --set edge.controlPlane.namespace=kube-gtm --set edge.controlPlane.kubeconfigSecret=k
expect_failure "edgeAccess.edges is for the control release" -f "$chart/ci/edge-values.yaml" --set 'edgeAccess.edges[0]=a'
expect_failure "at '/mode': value must be one of" --set mode=both
expect_failure "at '/edgeAccess/edges/0'" --set 'edgeAccess.edges[0]=Bad_Edge'
expect_failure "at '/dns/unreadyAfterStaleSeconds': minimum" --set dns.unreadyAfterStaleSeconds=-1
expect_failure "edge.endpointAgent runs in edge releases" --set edge.endpointAgent.enabled=true
expect_failure "edge.endpointAgent.enabled needs edge.endpointAgent.cluster" -f "$chart/ci/edge-values.yaml" --set edge.endpointAgent.cluster=
expect_failure "edge.endpointAgent.enabled needs edge.endpointAgent.kubeconfigSecret" -f "$chart/ci/edge-values.yaml" --set edge.endpointAgent.kubeconfigSecret=
expect_failure "edgeAccess.endpointAgents is for the control release" -f "$chart/ci/edge-values.yaml" --set 'edgeAccess.endpointAgents[0]=eu'
expect_failure "at '/operator/endpointDiscovery/kinds/0': value must be one of" --set 'operator.endpointDiscovery.kinds[0]=Pod'
expect_failure "prober.enabled=true needs prober.location" --set prober.enabled=true
expect_failure "at '/prober/location'" --set prober.enabled=true --set prober.location=local
expect_failure "at '/prober/replicas': maximum" --set prober.enabled=true --set prober.location=eu --set prober.replicas=2
expect_failure "at '/proberAccess/locations/0'" --set 'proberAccess.locations[0]=Bad_Location'
expect_failure "prober.enabled=true in edge mode needs prober.kubeconfigSecret" -f "$chart/ci/edge-values.yaml" --set prober.kubeconfigSecret=
expect_failure "proberAccess.locations is for the control release" -f "$chart/ci/edge-values.yaml" --set 'proberAccess.locations[0]=a'
# A single replica without leader election is valid.
if helm template kube-gtm "$chart" --set operator.replicas=1 --set operator.leaderElection.enabled=false >/dev/null; then
  pass "one operator replica without leader election renders"
else
  fail "one operator replica without leader election renders"
fi

echo "test-chart: $passes passed, $failures failed"
[[ $failures -eq 0 ]]
