# syntax=docker/dockerfile:1
# fog-coordinator (with fogctl, for the bootstrap job and for operators).
# Build from the repository root (the build context):
#   DOCKER_BUILDKIT=1 docker build -f deploy/docker/coordinator.Dockerfile -t fogplane/coordinator:dev .
# BuildKit reads coordinator.Dockerfile.dockerignore next to this file.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
# protoc: the protovalidate types crate compiles validate.proto with it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The target directory lives in a cache mount, so the binaries are copied out
# in the same step. Debug info is stripped (the release profile keeps line tables).
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,id=fogplane-target,sharing=locked \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    cargo build --release --locked -p fog-coordinator -p fogctl \
 && install -D -m 0755 -t /out target/release/fog-coordinator target/release/fogctl

FROM ${RUNTIME_IMAGE}
# ca-certificates: the system's root certificates, which verify an https://
# OTLP collector (--otlp-endpoint). One unprivileged user (uid/gid 10001), its
# store directory and the two directories the compose file's bootstrap job
# writes (the public CA certificate; join tokens). A fresh named volume
# mounted on one of them takes its ownership and mode.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 fog \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin fog \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/fogplane /var/lib/fogplane-join-tokens \
 && install -d -o 10001 -g 10001 -m 0755 /var/lib/fogplane-pki
COPY --from=build /out/ /usr/local/bin/
COPY --chmod=0755 deploy/scripts/fog-coordinator-init-admin deploy/scripts/fogplane-bootstrap /usr/local/bin/
USER 10001:10001
# Every flag has a FOG_* variable (fog-coordinator --help). The serving
# certificate must name the address clients use: set FOG_TLS_SANS.
ENV FOG_LISTEN=0.0.0.0:7443 \
    FOG_DATA_DIR=/var/lib/fogplane \
    FOG_LOG_JSON=true
VOLUME ["/var/lib/fogplane"]
# gRPC + mTLS; metrics when FOG_METRICS_LISTEN is set (the compose file uses 9464).
EXPOSE 7443 9464
# gRPC health needs a gRPC client; a TCP connect to the port is what the
# image can check without adding one (bash is part of Debian's base).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/7443"]
ENTRYPOINT ["/usr/local/bin/fog-coordinator"]
