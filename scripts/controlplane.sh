#!/usr/bin/env bash
# A real Kubernetes control plane (etcd + kube-apiserver, RBAC on) as local processes, for the
# cluster-mode test suite (scripts/apiserver-suite.sh) and for trying cluster mode without a
# container engine. Binaries are built from Go module sources (controlplane/*/go.mod, versions
# pinned there) once per machine and cached by version under ~/.cache/kube-gtm.
#
# usage: scripts/controlplane.sh build            build (or find cached) etcd, kube-apiserver, kubectl
#        scripts/controlplane.sh up [NAME]        start control plane NAME (default: main)
#        scripts/controlplane.sh down [NAME]      stop it (processes by PID) and remove its data
#        scripts/controlplane.sh env [NAME]       print `export` lines: KUBECONFIG, PATH (kubectl)
#        scripts/controlplane.sh stop-apiserver [NAME] | start-apiserver [NAME]
#                                                 an API outage: etcd and the port stay
#        scripts/controlplane.sh logs [NAME]      print the tail of every log
#
# State lives in target/controlplane/NAME: certificates made with openssl (a CA, the serving
# certificate for 127.0.0.1, an admin client certificate in system:masters), service-account
# signing keys, the kubeconfig, PID files, logs, etcd's data. Ports are free ones on 127.0.0.1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

k8s_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' controlplane/kubernetes/go.mod)
etcd_version=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3}' controlplane/etcd/go.mod)
cache=${KUBE_GTM_CACHE:-$HOME/.cache/kube-gtm}
bin="$cache/controlplane/kubernetes-$k8s_version-etcd-$etcd_version"
binaries=(etcd kube-apiserver kubectl)

die() { echo "controlplane: $*" >&2; exit 1; }

build() {
  local missing=()
  for b in "${binaries[@]}"; do [[ -x "$bin/$b" ]] || missing+=("$b"); done
  if ((${#missing[@]} == 0)); then
    echo "controlplane: kubernetes $k8s_version, etcd $etcd_version cached in $bin"
    return
  fi
  command -v go >/dev/null || die "go is needed to build ${missing[*]}"
  echo "controlplane: building kubernetes $k8s_version (kube-apiserver, kubectl) and etcd $etcd_version from module sources into $bin (once per machine; about 10 minutes on 2 cores)"
  local start=$SECONDS tmp
  mkdir -p "$(dirname "$bin")"
  tmp=$(mktemp -d "$bin.tmp.XXXXXX")
  # -mod=readonly: the committed go.sum pins every module; the proxy serves them.
  (cd controlplane/etcd && go build -mod=readonly -trimpath -ldflags=-s -o "$tmp/etcd" go.etcd.io/etcd/server/v3)
  # The version stamps `make` would set from git: helm checks the chart's kubeVersion against it.
  local minor=${k8s_version#v1.}
  minor=${minor%%.*}
  local v ldflags=-s
  for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $v.gitVersion=$k8s_version -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
  done
  (cd controlplane/kubernetes && go build -mod=readonly -trimpath -ldflags="$ldflags" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)
  rm -rf "$bin"
  mv "$tmp" "$bin"
  echo "controlplane: built in $((SECONDS - start)) s"
}

state_dir() { echo "$root/target/controlplane/${1:-main}"; }

free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

make_certs() {
  local d=$1
  mkdir -p "$d/pki"
  (
    cd "$d/pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kube-gtm-test-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key \
      -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kube-gtm-admin" \
      -keyout admin.key -out admin.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile admin.ext -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

# Waits until `curl ARGS URL` succeeds, or fails with the log after $2 seconds or as soon as
# process $4 has exited.
wait_url() {
  local url=$1 timeout=$2 log=$3 pid=$4; shift 4
  local deadline=$((SECONDS + timeout))
  until curl -fsS --max-time 2 "$@" "$url" >/dev/null 2>&1; do
    if ((SECONDS > deadline)) || ! kill -0 "$pid" 2>/dev/null; then
      echo "controlplane: $url not ready (process $pid $(kill -0 "$pid" 2>/dev/null && echo running || echo exited) after $((SECONDS + timeout - deadline))s); last log lines of $log:" >&2
      tail -n 40 "$log" >&2
      return 1
    fi
    sleep 0.2
  done
}

start_apiserver() {
  local d=$1
  local port etcd_port
  read -r port <"$d/apiserver.port"
  read -r etcd_port <"$d/etcd.port"
  "$bin/kube-apiserver" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$port" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --tls-cert-file="$d/pki/apiserver.crt" --tls-private-key-file="$d/pki/apiserver.key" \
    --client-ca-file="$d/pki/ca.crt" \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$d/pki/sa.pub" \
    --service-account-signing-key-file="$d/pki/sa.key" \
    --api-audiences=https://kubernetes.default.svc \
    --service-cluster-ip-range=10.96.0.0/16,fd00:10:96::/112 \
    --disable-admission-plugins=ServiceAccount \
    --endpoint-reconciler-type=none \
    --cert-dir="$d/pki" \
    >>"$d/kube-apiserver.log" 2>&1 &
  echo $! >"$d/kube-apiserver.pid"
  wait_url "https://127.0.0.1:$port/readyz" 120 "$d/kube-apiserver.log" $! \
    --cacert "$d/pki/ca.crt" --cert "$d/pki/admin.crt" --key "$d/pki/admin.key"
}

stop_pid() {
  local file=$1 pid
  [[ -f $file ]] || return 0
  read -r pid <"$file"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

up() {
  local name=${1:-main} d
  d=$(state_dir "$name")
  [[ -f $d/kube-apiserver.pid ]] && down "$name"
  build >/dev/null
  rm -rf "$d"
  mkdir -p "$d"
  make_certs "$d"
  local ports
  read -r -a ports <<<"$(free_ports 3)"
  echo "${ports[0]}" >"$d/apiserver.port"
  echo "${ports[1]}" >"$d/etcd.port"
  # --unsafe-no-fsync: test data, thrown away; the API server's behaviour is unchanged.
  "$bin/etcd" --name=default --data-dir="$d/etcd" --unsafe-no-fsync \
    --listen-client-urls="http://127.0.0.1:${ports[1]}" \
    --advertise-client-urls="http://127.0.0.1:${ports[1]}" \
    --listen-peer-urls="http://127.0.0.1:${ports[2]}" \
    --initial-advertise-peer-urls="http://127.0.0.1:${ports[2]}" \
    --initial-cluster="default=http://127.0.0.1:${ports[2]}" \
    >"$d/etcd.log" 2>&1 &
  echo $! >"$d/etcd.pid"
  wait_url "http://127.0.0.1:${ports[1]}/health" 60 "$d/etcd.log" $!
  start_apiserver "$d"
  cat >"$d/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: $name
    cluster:
      server: https://127.0.0.1:${ports[0]}
      certificate-authority: $d/pki/ca.crt
users:
  - name: admin
    user:
      client-certificate: $d/pki/admin.crt
      client-key: $d/pki/admin.key
contexts:
  - name: $name
    context: {cluster: $name, user: admin, namespace: default}
current-context: $name
EOF
  echo "controlplane $name: https://127.0.0.1:${ports[0]} (kubeconfig $d/kubeconfig)"
}

down() {
  local d
  d=$(state_dir "${1:-main}")
  stop_pid "$d/kube-apiserver.pid"
  stop_pid "$d/etcd.pid"
  rm -rf "$d/etcd"
}

logs() {
  local d f
  d=$(state_dir "${1:-main}")
  for f in "$d"/*.log; do
    [[ -f $f ]] || continue
    echo "==> $f (last 60 lines)"
    tail -n 60 "$f"
  done
}

cmd=${1:-}
shift || true
case "$cmd" in
  build) build ;;
  up) up "$@" ;;
  down) down "$@" ;;
  env)
    echo "export KUBECONFIG=$(state_dir "${1:-main}")/kubeconfig"
    echo "export PATH=$bin:\$PATH"
    ;;
  stop-apiserver) stop_pid "$(state_dir "${1:-main}")/kube-apiserver.pid" ;;
  start-apiserver) start_apiserver "$(state_dir "${1:-main}")" ;;
  logs) logs "$@" ;;
  bin-dir) echo "$bin" ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
