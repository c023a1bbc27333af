#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for FUZZ_SECONDS each (default 45), from the
# committed seeds (fuzz/seeds/<target>) plus what earlier runs found (fuzz/corpus/<target>).
# Installs cargo-fuzz if missing. Needs a nightly compiler for libFuzzer's instrumentation: the
# nightly toolchain when rustup has one, else the default one with RUSTC_BOOTSTRAP=1. Fails
# (never skips) when neither works, and when a target crashes; the crashing input is then in
# fuzz/artifacts/<target>/. Usage: scripts/fuzz.sh [TARGET...]
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-45}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
    echo "fuzz: using the nightly toolchain"
else
    export RUSTC_BOOTSTRAP=1
    echo "fuzz: no nightly toolchain; using $(rustc --version) with RUSTC_BOOTSTRAP=1"
fi

cd fuzz
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
fi
if [ "${#targets[@]}" -eq 0 ]; then
    echo "fuzz: no targets found" >&2
    exit 1
fi

# One build for all targets; a failure here (no usable compiler) fails the run.
cargo "${toolchain[@]}" fuzz build -O

for target in "${targets[@]}"; do
    echo "fuzz: $target for ${seconds}s"
    mkdir -p "corpus/$target"
    cargo "${toolchain[@]}" fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
done
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
