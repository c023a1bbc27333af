# kube-gtm developer entry points. Every target here works on a fresh machine with a Rust
# toolchain and python3; `make test` installs the extra tools it needs.

CARGO ?= cargo
CRDS_YAML := charts/kube-gtm/files/crds.yaml

.PHONY: build run test test-tools crds check-crds lint fmt chart-test test-apiserver images e2e bench

# Container image for both binaries and the e2e test backend (Dockerfile); kind cluster for e2e.
IMAGE ?= kube-gtm:e2e
KIND_CLUSTER ?= kube-gtm-e2e

## build: compile every crate, tests included
build:
	$(CARGO) build --workspace --all-targets

## run: kube-gtm in local mode on $(MANIFESTS): operator, demo backends, DNS on 127.0.0.1:5353
MANIFESTS ?= examples
run:
	MANIFESTS=$(MANIFESTS) ./scripts/run-local.sh

## test: the whole test suite, exactly what CI runs (lint, unit, API and local-mode tests, schema checks)
test: test-tools lint
	$(CARGO) test --workspace --all-targets
	$(MAKE) check-crds
	$(MAKE) chart-test
	./scripts/apiserver-suite.sh
	FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) ./scripts/fuzz.sh
	./scripts/e2e.sh --check-only

test-tools:
	./scripts/install-test-tools.sh

## crds: regenerate the CRD YAML from the Rust types
crds:
	$(CARGO) run -q -p gtm-operator -- crds > $(CRDS_YAML)

## check-crds: the checked-in CRDs pass the Kubernetes API schemas (strict)
check-crds:
	kubernetes-validate --strict --quiet $(CRDS_YAML)

## lint: formatting and clippy with warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## chart-test: shellcheck, helm lint --strict, helm template (default and every ci/ values file)
## validated with kubernetes-validate --strict, and invalid values rejected at template time
chart-test:
	./scripts/test-chart.sh

## test-apiserver: the real-API-server suite alone (etcd + kube-apiserver as local processes; part of test)
test-apiserver:
	./scripts/apiserver-suite.sh

## fuzz: every cargo-fuzz target (DNS packets over UDP and TCP, payloads, ConfigMap parts,
## manifests, probe locations' reports) for FUZZ_SECONDS each; `make test` runs them for FUZZ_TEST_SECONDS each
FUZZ_SECONDS ?= 600
FUZZ_TEST_SECONDS ?= 30
.PHONY: fuzz
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh

## images: build the container image (needs docker; otherwise prints why and exits 0)
images:
	IMAGE=$(IMAGE) ./scripts/build-images.sh

## e2e: kind cluster, image, chart, e2e tests, cluster deleted (needs docker and kind; else skips)
e2e:
	IMAGE=$(IMAGE) KIND_CLUSTER=$(KIND_CLUSTER) ./scripts/e2e.sh

## bench: throughput and latency against gdnsd and Knot, propagation, failover, scale and prober
## cost on this machine; installs what it needs, writes docs/benchmarks.md (not part of test)
bench:
	./bench/run.sh $(BENCH_ARGS)
