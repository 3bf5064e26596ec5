#!/usr/bin/env bash
# Runs every check and test Fogplane has (Rust; the Python and Node example
# clients; the deployment files; then the control panel in a real browser),
# on a fresh clone of this repo on a
# fresh machine (Rust, Node/npm and Python preinstalled). Exits non-zero on
# the first failure. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "tools"
source scripts/deps.sh
protoc --version
cargo --version
node --version
npm --version

step "formatting (cargo fmt --check)"
cargo fmt --all --check

step "protobuf lint (buf lint, from the @bufbuild/buf npm package)"
(cd proto && npm ci --no-audit --no-fund --loglevel=error && npx --no-install buf lint)

step "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build the binaries the end-to-end tests start"
cargo build --workspace --bins --locked

step "tests (unit, property, in-process gRPC, real processes)"
cargo test --workspace --locked

step "clients in other languages: Python (grpcio, stubs generated from proto/) and Node (@grpc/grpc-js) against a real coordinator and agent"
bash clients/test.sh

step "deployment files (deploy/check.sh: compose config, Helm lint/render against Kubernetes schemas, systemd-analyze, shellcheck, hadolint, smoke test of the deploy scripts against the built binaries)"
bash deploy/check.sh

step "control panel: codegen from proto/, typecheck, JS budget, browser tests (Playwright in Debian's Chromium against a real coordinator, agents, simulator and fog-gateway)"
(cd gateway/panel && npm ci --no-audit --no-fund --loglevel=error && npm test)
