#!/usr/bin/env bash
# Builds the kube-gtm image (Dockerfile: gtm-operator, gtm-dnspod, gtm-prober, gtm-test-backend) as $IMAGE.
# Without docker (or a running daemon) it prints one line and exits 0, so `make images` is safe
# to call anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${IMAGE:-kube-gtm:dev}

if ! command -v docker >/dev/null 2>&1; then
  echo "images: skipped: docker not found"
  exit 0
fi
if ! docker info >/dev/null 2>&1; then
  echo "images: skipped: docker found but its daemon is not reachable"
  exit 0
fi
echo "images: building $image"
DOCKER_BUILDKIT=1 docker build --tag "$image" .
