#!/usr/bin/env bash
# End-to-end test of the example clients against real processes: starts a
# coordinator (mTLS, its own CA) and one fog-agent on 127.0.0.1, then runs the
# Python client (grpcio, stubs generated from proto/ now) and the Node client
# (@grpc/grpc-js, proto/ loaded at run time). Each must sign in, get its echo
# task run by the agent, see the agent in the topology and sign out; each must
# also fail cleanly, naming the field, on a task the coordinator refuses.
# Everything it starts is stopped on exit.
#
# Needs the binaries built (cargo build --bins); FOG_BIN names another
# directory than target/debug. Python 3.10+ with venv, Node 20+ with npm.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${FOG_BIN:-target/debug}"
for b in fog-coordinator fog-agent fogctl; do
  [ -x "$BIN/$b" ] || { echo "clients/test.sh: $BIN/$b is missing; build it first (cargo build --bins)" >&2; exit 1; }
done

step() { printf '\n==> clients: %s\n' "$*"; }
started=$SECONDS
tmp="$(mktemp -d)"
pids=()
cleanup() {
  status=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$status" -ne 0 ]; then
    for log in "$tmp"/*.log; do [ -f "$log" ] && { echo "--- $log (last 30 lines)"; tail -n 30 "$log"; }; done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Polls a condition (the command after $3) every 0.1 s, for at most $1 seconds
# and while process $3 is alive; $2 says what is awaited.
wait_for() {
  local limit=$1 what=$2 pid=$3
  shift 3
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { echo "gave up waiting for $what: its process exited" >&2; return 1; }
    [ "$SECONDS" -lt "$end" ] || { echo "timed out after ${limit} s waiting for $what" >&2; return 1; }
    sleep 0.1
  done
}

step "coordinator and one fog-agent on 127.0.0.1"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# localhost is in the serving certificate; only 127.0.0.1 is listened on.
export FOG_COORDINATOR="https://localhost:$port" FOG_CA_FILE="$tmp/data/ca.pem" FOGCTL_CONFIG_DIR="$tmp/fogctl"
(umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$tmp/admin-password")
"$BIN/fog-coordinator" admin create --data-dir "$tmp/data" --username admin --password-file "$tmp/admin-password" >/dev/null
"$BIN/fog-coordinator" --listen "127.0.0.1:$port" --data-dir "$tmp/data" >"$tmp/coordinator.log" 2>&1 &
pids+=($!)
coordinator_up() { [ -f "$FOG_CA_FILE" ] && "$BIN/fogctl" login --username admin --password-stdin <"$tmp/admin-password"; }
wait_for 30 "the coordinator" "${pids[0]}" coordinator_up
token=$("$BIN/fogctl" join-token create --name edge-1 --ttl 10m)
"$BIN/fog-agent" join --token "$token" --coordinator "$FOG_COORDINATOR" --name edge-1 \
  --state-dir "$tmp/edge-1" >"$tmp/agent-join.log" 2>&1
"$BIN/fog-agent" run --state-dir "$tmp/edge-1" --region eu-west >"$tmp/agent.log" 2>&1 &
pids+=($!)
agent_idle() { "$BIN/fogctl" -o json nodes list --status idle | grep -q '"edge-1"'; }
wait_for 30 "the agent to be idle" "${pids[1]}" agent_idle

# The clients sign in as this user, with the same settings.
export FOG_USERNAME=admin FOG_TIMEOUT=30
FOG_PASSWORD="$(cat "$tmp/admin-password")"
export FOG_PASSWORD

# Runs one client: $1 is its name, $2 the text it echoes, the rest its command.
# Asserts on its output, then runs it again with an echo text over the
# coordinator's 4096-byte limit and asserts it fails naming the field.
check_client() {
  local name=$1 text=$2
  shift 2
  local out="$tmp/$name.out" err="$tmp/$name.err"
  "$@" "$text" >"$out" 2>"$err" || { echo "$name client failed:"; cat "$out" "$err"; return 1; }
  cat "$out"
  grep -Eq "^task [^ ]+ succeeded on node edge-1: $text\$" "$out" || { echo "$name: no successful task in its output"; return 1; }
  grep -Eq '^topology at revision [0-9]+: 1 node\(s\)$' "$out" || { echo "$name: did not see the node"; return 1; }
  grep -Eq '^  edge-1 [a-z_]+ region=eu-west ' "$out" || { echo "$name: node edge-1 not listed"; return 1; }
  grep -qx 'signed out' "$out" || { echo "$name: did not sign out"; return 1; }

  if "$@" "$(head -c 5000 /dev/zero | tr '\0' x)" >"$out" 2>"$err"; then
    echo "$name: an over-long echo task was accepted"
    return 1
  fi
  if ! grep -q '^error: SubmitTask: INVALID_ARGUMENT: ' "$err" || ! grep -q '^  field spec\.builtin\.echo: ' "$err"; then
    echo "$name: unclear error for an over-long echo task:"
    cat "$err"
    return 1
  fi
  echo "(refused as expected: $(grep -m1 '^  field ' "$err" | sed 's/^ *//'))"
}

step "Python client (venv, pinned grpcio, stubs generated from proto/)"
py=clients/python
# The venv is kept between runs (gitignored); a broken one is made anew.
"$py/.venv/bin/python" -c '' 2>/dev/null || python3 -m venv --clear "$py/.venv" ||
  { echo "clients/test.sh: needs Python's venv module (Debian: apt-get install python3-venv)" >&2; exit 1; }
"$py/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$py/requirements.txt"
PYTHON="$py/.venv/bin/python" bash "$py/gen.sh"
check_client python "hello from python" "$py/.venv/bin/python" "$py/fogplane_client.py"

step "Node client (npm ci, @grpc/grpc-js, proto/ loaded at run time)"
(cd clients/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
check_client node "hello from node" node clients/node/fogplane-client.mjs

step "passed in $((SECONDS - started)) s"
