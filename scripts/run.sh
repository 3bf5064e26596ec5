#!/usr/bin/env bash
# Runs a local Fogplane fleet: the coordinator (mTLS, its own CA, embedded
# store under .fog-dev/), three real fog-agent processes that each join with a
# single-use token and then hold an mTLS session, fog-gateway serving the
# control panel (built from source here) on http://127.0.0.1:8080, a few demo
# tasks, and a live topology view. Ctrl-C stops everything.
#
#   FOG_AGENTS=3          number of fog-agent processes
#   FOG_PORT=7443         coordinator port on 127.0.0.1
#   FOG_GATEWAY_PORT=8080 gateway (panel) port on 127.0.0.1
#   FOG_FRESH=0           keep the store and agent state of the last run
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
AGENTS="${FOG_AGENTS:-3}"
PORT="${FOG_PORT:-7443}"
GW_PORT="${FOG_GATEWAY_PORT:-8080}"
DEV=".fog-dev"

source scripts/deps.sh
echo "==> building (first time takes a few minutes)"
cargo build --bins --locked -p fog-coordinator -p fogctl -p fog-agent -p fog-gateway
echo "==> building the control panel (npm ci, codegen from proto/, typecheck, vite)"
(cd gateway/panel && npm ci --no-audit --no-fund --loglevel=error && npm run build)
BIN=target/debug

[ "${FOG_FRESH:-1}" = 1 ] && rm -rf "$DEV"
mkdir -p "$DEV"
# fogctl keeps its sign-in here, not in your ~/.config.
export FOG_COORDINATOR="https://localhost:${PORT}" FOG_CA_FILE="$DEV/data/ca.pem" FOGCTL_CONFIG_DIR="$DEV/fogctl"
FOGCTL=("$BIN/fogctl")

# The first admin is created offline, before the coordinator starts; there is
# no default password. This one is random and kept (0600) in $DEV/admin-password.
if [ ! -s "$DEV/admin-password" ]; then
  (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$DEV/admin-password")
  "$BIN/fog-coordinator" admin create --data-dir "$DEV/data" --username admin --password-file "$DEV/admin-password"
fi
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "==> stopping"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "==> coordinator on $FOG_COORDINATOR, mTLS (logs: $DEV/coordinator.log)"
"$BIN/fog-coordinator" --listen "127.0.0.1:${PORT}" --data-dir "$DEV/data" \
  >"$DEV/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  [ -f "$FOG_CA_FILE" ] && "${FOGCTL[@]}" login --username admin --password-stdin <"$DEV/admin-password" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$DEV/coordinator.log"; exit 1; }
  sleep 0.1
done
"${FOGCTL[@]}" whoami
"${FOGCTL[@]}" status

echo "==> fog-gateway on http://127.0.0.1:${GW_PORT} (logs: $DEV/gateway.log)"
"$BIN/fog-gateway" --listen "127.0.0.1:${GW_PORT}" --coordinator "$FOG_COORDINATOR" --ca-file "$FOG_CA_FILE" \
  --panel-dir gateway/panel/dist >"$DEV/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  grep -q 'listening on' "$DEV/gateway.log" 2>/dev/null && break
  kill -0 "${pids[-1]}" 2>/dev/null || { cat "$DEV/gateway.log"; exit 1; }
  sleep 0.1
done

regions=(eu-west us-east ap-south eu-central us-west)
echo "==> $AGENTS fog-agent processes join with one-time tokens (logs: $DEV/agent-*.log)"
for i in $(seq 1 "$AGENTS"); do
  name="agent-$i"
  token=$("${FOGCTL[@]}" join-token create --name "$name" --ttl 10m --label fog.io/onion-routing=true 2>/dev/null)
  "$BIN/fog-agent" join --token "$token" --coordinator "$FOG_COORDINATOR" --name "$name" \
    --state-dir "$DEV/$name" >"$DEV/$name.join.log" 2>&1
  "$BIN/fog-agent" run --state-dir "$DEV/$name" --region "${regions[$(( (i - 1) % 5 ))]}" \
    --label runtime=fog-agent --allow-command /bin/echo,/bin/uname >"$DEV/$name.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 1 100); do
  n=$("${FOGCTL[@]}" -o json nodes list --status idle 2>/dev/null | grep -c '"id"' || true)
  [ "${n:-0}" -ge "$AGENTS" ] && break
  sleep 0.1
done
"${FOGCTL[@]}" nodes list

echo "==> demo tasks"
"${FOGCTL[@]}" tasks submit --name hello --echo "hello from the fog" --tier gold --wait
"${FOGCTL[@]}" tasks submit --name uname --exec /bin/uname --arg -a --wait
"${FOGCTL[@]}" tasks submit --name crunch --hash-rounds 200000 --strategy least-loaded --count 3 --wait
"${FOGCTL[@]}" tasks submit --name private --echo "onion-capable nodes only" --privacy private \
  --strategy privacy-aware --wait
"${FOGCTL[@]}" tasks submit --name sticky --sleep-ms 1000 --strategy affinity --affinity-key cache-7 --count 3
"${FOGCTL[@]}" tasks list

cat <<MSG

==> the fleet is running.
    Control panel: http://127.0.0.1:${GW_PORT}/ — sign in as admin with the password in $DEV/admin-password
    In another terminal (fogctl is signed in as admin):
      export FOG_COORDINATOR=$FOG_COORDINATOR FOG_CA_FILE=$FOG_CA_FILE FOGCTL_CONFIG_DIR=$FOGCTL_CONFIG_DIR
      $BIN/fogctl tasks submit --echo hi --wait
      $BIN/fogctl tasks explain --cpu-millis 2000 --strategy proximity --origin-region us-west
      $BIN/fogctl nodes list
    Live topology below (Ctrl-C stops the coordinator and the agents).

MSG
"${FOGCTL[@]}" topology --watch --detail status
