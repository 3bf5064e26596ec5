#!/usr/bin/env bash
# The scale benchmarks, every figure beside a baseline measured in the same
# run (raw tonic, etcd), written into BENCHMARKS.md between the fog-bench
# markers. Installs etcd if missing, builds release binaries, runs for about
# 15 minutes on a 2-core machine. Arguments go to `fog-bench all`
# (e.g. `--print` to only print, `--quick` for a smoke run).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
source scripts/deps.sh
cargo build --release --locked -p fog-bench -p fog-coordinator -p fog-agent -p fogctl
exec target/release/fog-bench all "$@"
