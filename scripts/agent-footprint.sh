#!/usr/bin/env bash
# Measures the agent's footprint as the issue states it: stripped release
# binary size, and RSS and CPU after 30 s idle holding an mTLS session with
# heartbeats (the agent joined with a token). Baseline in the same run: a
# simulated node (`fogctl sim --nodes 1`: same protocol, plaintext, no OS
# metrics) on a second, insecure coordinator. Prints a table for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo build --release --locked -p fog-coordinator -p fogctl >/dev/null
# The agent as shipped (deploy/docker/agent.Dockerfile): built alone, with the agent profile.
cargo build --profile agent --locked -p fog-agent >/dev/null
R=target/release
A=target/agent/fog-agent
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
tls_port=$((20000 + RANDOM % 10000)); dev_port=$((tls_port + 1))
wait_up() { for _ in $(seq 1 100); do "$R/fogctl" "$@" login -u admin --password-stdin <<<"$pw" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
export FOGCTL_CONFIG_DIR="$work/fogctl"
pw=footprint-admin-password
for d in tls dev; do $R/fog-coordinator admin create --data-dir "$work/$d" --username admin --password-stdin <<<"$pw" 2>/dev/null; done

$R/fog-coordinator --listen "127.0.0.1:$tls_port" --data-dir "$work/tls" --heartbeat-interval 1s >"$work/tls.log" 2>&1 &
$R/fog-coordinator --insecure-dev --listen "127.0.0.1:$dev_port" --data-dir "$work/dev" --heartbeat-interval 1s \
  >"$work/dev.log" 2>&1 &
for _ in $(seq 1 100); do [ -f "$work/tls/ca.pem" ] && break; sleep 0.1; done
tls=(--coordinator "https://localhost:$tls_port" --ca-file "$work/tls/ca.pem")
wait_up "${tls[@]}"; wait_up --coordinator "http://127.0.0.1:$dev_port"
token=$("$R/fogctl" "${tls[@]}" join-token create --name footprint 2>/dev/null)
$A join --token "$token" --coordinator "https://localhost:$tls_port" --name footprint \
  --state-dir "$work/agent" >/dev/null
$A run --state-dir "$work/agent" >"$work/agent.log" 2>&1 &
agent=$!
$R/fogctl --coordinator "http://127.0.0.1:$dev_port" sim --nodes 1 --id-prefix footprint >"$work/sim.log" 2>&1 &
sim=$!
sleep 5 # let both connect and settle before the idle window
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
a0=$(ticks $agent); s0=$(ticks $sim)
sleep 30 # the idle window being measured (not a wait for a condition)
a1=$(ticks $agent); s1=$(ticks $sim)
hz=$(getconf CLK_TCK)
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
pct() { awk -v t="$1" -v hz="$hz" 'BEGIN{printf "%.3f", 100*t/hz/30}'; }
cp $A "$work/fog-agent.stripped" && strip "$work/fog-agent.stripped"
healthy=$("$R/fogctl" "${tls[@]}" -o json nodes get footprint | grep -c LIVENESS_HEALTHY || true)
printf '%-44s %10s %12s\n' "process (30 s idle, 1 s heartbeats)" "RSS kB" "CPU % core"
printf '%-44s %10s %12s\n' "fog-agent, mTLS session, real OS metrics" "$(rss $agent)" "$(pct $((a1 - a0)))"
printf '%-44s %10s %12s\n' "baseline: fogctl sim --nodes 1 (plaintext)" "$(rss $sim)" "$(pct $((s1 - s0)))"
echo "stripped fog-agent binary: $(stat -c %s "$work/fog-agent.stripped") bytes; agent healthy over mTLS: $healthy"
