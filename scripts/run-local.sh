#!/usr/bin/env bash
# `make run`: kube-gtm in local mode on this machine. The operator reads the manifests in
# $MANIFESTS (default: examples), probes and compiles them, and writes the DNS pod's payloads
# to $RUN_DIR; the DNS pod answers on 127.0.0.1:$DNS_PORT (UDP and TCP). With DEMO_BACKENDS=1
# (the default) every health-checked address on 127.0.0.0/8 gets a small HTTP backend, so the
# checks pass and you can fail one (`curl -X POST <addr>:<port>/fail`) and watch the answer move.
# The operator serves the live topology page on 127.0.0.1:$PAGE_PORT (default 8080).
# Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."

manifests=${MANIFESTS:-examples}
run_dir=${RUN_DIR:-target/local-run}
dns_port=${DNS_PORT:-5353}
http_port=${HTTP_PORT:-8081}
page_port=${PAGE_PORT:-8080}
demo_backends=${DEMO_BACKENDS:-1}
profile=${PROFILE:-release}

if [[ ! -d $manifests ]]; then
  echo "run: no manifest directory $manifests" >&2
  exit 1
fi

flag=--release
[[ $profile == release ]] || flag=
# shellcheck disable=SC2086 # $flag is empty or one word
cargo build $flag -p gtm-operator -p gtm-dnspod -p e2e --bins
bin=target/$profile
[[ $profile == release ]] || bin=target/debug

mkdir -p "$run_dir"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$bin/gtm-operator" local --manifests "$manifests" --output "$run_dir" \
  --http-listen "127.0.0.1:$page_port" &
pids+=($!)
for _ in $(seq 100); do [[ -s $run_dir/config.json ]] && break; sleep 0.1; done
[[ -s $run_dir/config.json ]] || { echo "run: the operator wrote no config" >&2; exit 1; }

if [[ $demo_backends == 1 ]]; then
  # Every (address, port) a health check probes on loopback, from the published config.
  mapfile -t targets < <(python3 - "$run_dir/config.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
seen = set()
for pool in config["pools"]:
    for address in pool["addresses"]:
        for task in address.get("tasks", []):
            target = task.split("@", 1)[1]
            if "#" in target and target.startswith("127."):
                seen.add(target.replace("#", ":"))
print("\n".join(sorted(seen)))
PY
)
  for target in "${targets[@]}"; do
    [[ -n $target ]] || continue
    "$bin/gtm-test-backend" --listen "$target" --name "$target" 2>/dev/null &
    pids+=($!)
  done
  echo "run: started ${#targets[@]} demo backends (GET /healthz; POST /fail and /recover)"
fi

"$bin/gtm-dnspod" --config-dir "$run_dir" --dns-listen "127.0.0.1:$dns_port" \
  --http-listen "127.0.0.1:$http_port" &
pids+=($!)

cat <<TXT

kube-gtm is answering on 127.0.0.1:$dns_port (UDP and TCP).

  Topology page (live): http://127.0.0.1:$page_port/

Try:

  dig @127.0.0.1 -p $dns_port app.gtm.example.com A +norec      # sequential: eu-west while healthy
  dig @127.0.0.1 -p $dns_port shop.gtm.example.com A +norec     # weighted 3:1
  dig @127.0.0.1 -p $dns_port static.gtm.example.com A +norec   # round robin, 2 answers
  dig @127.0.0.1 -p $dns_port www.gtm.example.com A +norec      # CNAME from a Domain pool
  dig @127.0.0.1 -p $dns_port app.gtm.example.com AAAA +norec
  dig @127.0.0.1 -p $dns_port portal.gtm.example.com A +norec +subnet=198.51.100.0/24
  dig @127.0.0.1 -p $dns_port gtm.example.com SOA +norec
  dig @127.0.0.1 -p $dns_port gtm.example.com NS +norec          # name servers with glue (zone.yaml)
  dig @127.0.0.1 -p $dns_port _acme-challenge.gtm.example.com TXT +norec   # a static record

  curl -X POST 127.0.10.1:8080/fail; curl -X POST 127.0.10.2:8080/fail   # fail eu-west
  curl -s 127.0.0.1:$http_port/metrics | grep gtm_dnspod_queries
  kill -USR1 ${pids[0]}     # reprint the status table

Edit files in $manifests and the answers follow. Ctrl-C stops everything.
TXT
wait -n "${pids[0]}" "${pids[-1]}"
