#!/usr/bin/env bash
# Runs a local Fogplane fleet: the coordinator (insecure dev mode, embedded
# store under .fog-dev/), simulated nodes speaking the real session protocol,
# a few demo tasks, and a live topology view. Ctrl-C stops everything.
#
#   FOG_NODES=5      number of simulated nodes
#   FOG_PORT=7443    coordinator port on 127.0.0.1
#   FOG_FRESH=1      start from an empty store
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
NODES="${FOG_NODES:-5}"
PORT="${FOG_PORT:-7443}"
URL="http://127.0.0.1:${PORT}"
DEV=".fog-dev"

echo "==> building (first time takes a few minutes)"
cargo build --bins --locked -p fog-coordinator -p fogctl
BIN=target/debug
FOGCTL=("$BIN/fogctl" --coordinator "$URL")

[ "${FOG_FRESH:-0}" = 1 ] && rm -rf "$DEV"
mkdir -p "$DEV"
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "==> stopping"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "==> coordinator on $URL (logs: $DEV/coordinator.log)"
"$BIN/fog-coordinator" --insecure-dev --listen "127.0.0.1:${PORT}" --data-dir "$DEV/data" \
  >"$DEV/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  "${FOGCTL[@]}" status >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$DEV/coordinator.log"; exit 1; }
  sleep 0.1
done
"${FOGCTL[@]}" status

echo "==> $NODES simulated nodes (logs: $DEV/sim.log)"
"$BIN/fogctl" --coordinator "$URL" sim --nodes "$NODES" --id-prefix dev >"$DEV/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  n=$("${FOGCTL[@]}" -o json nodes list --status idle 2>/dev/null | grep -c '"id"' || true)
  [ "${n:-0}" -ge "$NODES" ] && break
  sleep 0.1
done
"${FOGCTL[@]}" nodes list

echo "==> demo tasks"
"${FOGCTL[@]}" tasks submit --name hello --echo "hello from the fog" --tier gold --wait
"${FOGCTL[@]}" tasks submit --name crunch --hash-rounds 200000 --strategy least-loaded --count 3 --wait
"${FOGCTL[@]}" tasks submit --name near-paris --sleep-ms 1500 --strategy proximity \
  --origin-lat 48.85 --origin-lon 2.35 --origin-region eu-west --count 4
"${FOGCTL[@]}" tasks submit --name sticky --sleep-ms 1000 --strategy affinity --affinity-key cache-7 --count 3
"${FOGCTL[@]}" tasks list

cat <<MSG

==> the fleet is running. In another terminal:
      $BIN/fogctl --coordinator $URL tasks submit --echo hi --wait
      $BIN/fogctl --coordinator $URL tasks explain --cpu-millis 2000 --strategy proximity --origin-region us-west
      $BIN/fogctl --coordinator $URL nodes list
    Live topology below (Ctrl-C stops the coordinator and the nodes).

MSG
"${FOGCTL[@]}" topology --watch --detail status
