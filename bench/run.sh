#!/usr/bin/env bash
# kube-gtm benchmark suite (make bench; not part of make test).
#
# Installs what it needs when missing (dnsperf, gdnsd, Knot, PowerDNS, taskset, openssl, dig, perf; apt-get), builds the release
# binaries (gtm-dnspod, gtm-operator, the bench/scale helper), runs bench/bench.py on 127.0.0.1
# only, and writes docs/benchmarks.md. Every process started is stopped on exit.
#
# Usage: bench/run.sh [--quick] [--only throughput,propagation,scale,failover,prober,cluster,flood,locations,dnssec]
#   throughput: [--steady-rounds N] (rounds at a steady 1 000 QPS, default 5)
#     [--saturation-rounds N] (full-load rounds, default 3; 0 measures the steady rate only)
#     [--mixes plain,EDNS,...] (a subset of the mixes) [--baseline-bin DIR] (another gtm-dnspod
#     build served beside, as kube-gtm-baseline: before and after in one run) [--knot-control]
#     (a second Knot configured alike, as knot-control: Knot against itself, the noise floor of
#     the latency comparisons)
#   The scale helper (bench/scale) is built only when propagation or scale runs.
#   cluster: a control plane of its own (scripts/controlplane.sh, built where Go is present) and helm.
#   BENCH_OUT   report to write (default docs/benchmarks.md)
#   CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${BENCH_OUT:-docs/benchmarks.md}

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v gdnsd >/dev/null || need+=(gdnsd)
command -v knotd >/dev/null || need+=(knot)
command -v pdns_server >/dev/null || need+=(pdns-server pdns-backend-bind)
command -v taskset >/dev/null || need+=(util-linux)
command -v python3 >/dev/null || need+=(python3)
command -v openssl >/dev/null || need+=(openssl)
command -v dig >/dev/null || need+=(bind9-dnsutils)
# perf: where the DNS pod's CPU goes on each path (the throughput section's profiles).
command -v perf >/dev/null || need+=(linux-perf)
if ((${#need[@]})); then
  echo "bench: installing ${need[*]}" >&2
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi

target=${CARGO_TARGET_DIR:-$root/target}
export CARGO_TARGET_DIR=$target
# The sections asked for (--only LIST or --only=LIST; every section by default).
sections=all
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --only) sections=${args[i + 1]:-} ;;
    --only=*) sections=${args[i]#--only=} ;;
  esac
done
echo "bench: building release binaries (CARGO_TARGET_DIR=$target)" >&2
cargo build --release --locked -p gtm-dnspod -p gtm-operator
# The scale helper, for the sections that run it (propagation, scale) only: it is its own
# workspace, so it compiles the operator and the DNS pod a second time, which on a loaded 2-core
# machine takes as long as the build above (about 25 minutes), far longer than a quick section.
# It takes the project's lock file so that the versions match the binaries'.
if [[ $sections == all || ,$sections, == *,propagation,* || ,$sections, == *,scale,* ]]; then
  cp Cargo.lock bench/scale/Cargo.lock
  cargo build --release --manifest-path bench/scale/Cargo.toml
fi

json=$(mktemp --suffix=.json)
pid=
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -f "$json"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

python3 bench/bench.py --root "$root" --bin "$target/release" \
  --scale-bin "$target/release/gtm-bench-scale" --out "$out" --json "$json" "$@" &
pid=$!
wait "$pid"
pid=
echo "bench: report written to $out" >&2
