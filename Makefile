# kube-gtm developer entry points. Every target here works on a fresh machine with a Rust
# toolchain and python3; `make test` installs the extra tools it needs.

CARGO ?= cargo
CRDS_YAML := charts/kube-gtm/files/crds.yaml

.PHONY: build test test-tools crds check-crds lint fmt

## build: compile every crate, tests included
build:
	$(CARGO) build --workspace --all-targets

## test: the whole test suite, exactly what CI runs (lint, unit, API and local-mode tests, schema checks)
test: test-tools lint
	$(CARGO) test --workspace --all-targets
	$(MAKE) check-crds

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
