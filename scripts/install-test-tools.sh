#!/usr/bin/env bash
# Installs what `make test` needs beyond the Rust toolchain, when it is missing:
# kubernetes-validate (PyPI), which checks the generated CRDs against the Kubernetes API schemas.
# Idempotent; safe to run on every `make test`.
set -euo pipefail

if ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "installing kubernetes-validate (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
fi
