#!/usr/bin/env bash
# System packages the build needs, installed when missing (Debian/Ubuntu):
#   protoc — prost-protovalidate's build script compiles buf/validate/validate.proto with it.
#   etcd   — the peer baseline of `fog-bench` (Debian's etcd-server, 3.4), started by the
#            benchmarks and their quick variant in the test suite; never run as a service.
#   prometheus — a real Prometheus server the metrics tests start to scrape the coordinator
#            and query with PromQL; never run as a service.
# Sourced by scripts/run.sh and scripts/test.sh.
need_apt=()
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
# chattr: the fault suite makes a store directory immutable (read-only even to root).
command -v chattr >/dev/null 2>&1 || need_apt+=(e2fsprogs)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "==> installing ${need_apt[*]} (apt)"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null; }
fi
command -v protoc >/dev/null 2>&1 || { echo "protoc is required (apt-get install protobuf-compiler)" >&2; exit 1; }
command -v etcd >/dev/null 2>&1 || { echo "etcd is required (apt-get install etcd-server)" >&2; exit 1; }
command -v prometheus >/dev/null 2>&1 || { echo "prometheus is required (apt-get install prometheus)" >&2; exit 1; }
