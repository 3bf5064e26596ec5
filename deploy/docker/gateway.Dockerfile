# syntax=docker/dockerfile:1
# fog-gateway with the control panel built in.
# Build from the repository root (the build context):
#   DOCKER_BUILDKIT=1 docker build -f deploy/docker/gateway.Dockerfile -t fogplane/gateway:dev .
# BuildKit reads gateway.Dockerfile.dockerignore next to this file.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG NODE_IMAGE=node:22-bookworm-slim
ARG RUNTIME_IMAGE=debian:bookworm-slim

# The panel: API types generated from proto/ (buf from npm, protoc-gen-es),
# typecheck, vite build, size budget. Output: gateway/panel/dist.
FROM ${NODE_IMAGE} AS panel
ENV PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
    npm_config_audit=false \
    npm_config_fund=false \
    npm_config_update_notifier=false
WORKDIR /src
COPY proto/ proto/
COPY gateway/panel/ gateway/panel/
WORKDIR /src/gateway/panel
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --loglevel=error && npm run build

FROM ${RUST_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,id=fogplane-target,sharing=locked \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    cargo build --release --locked -p fog-gateway \
 && install -D -m 0755 -t /out target/release/fog-gateway

FROM ${RUNTIME_IMAGE}
RUN groupadd --system --gid 10001 fog \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin fog
COPY --from=build /out/fog-gateway /usr/local/bin/fog-gateway
COPY --from=panel /src/gateway/panel/dist/ /usr/local/share/fogplane/panel/
USER 10001:10001
# The coordinator's CA certificate (its <data-dir>/ca.pem) must be mounted at
# FOG_CA_FILE; FOG_COORDINATOR must match a name in its --tls-san list.
ENV FOG_GATEWAY_LISTEN=0.0.0.0:8080 \
    FOG_GATEWAY_PANEL_DIR=/usr/local/share/fogplane/panel \
    FOG_COORDINATOR=https://coordinator:7443 \
    FOG_CA_FILE=/etc/fogplane/ca.pem \
    FOG_LOG_FORMAT=json
# HTTP for browsers; metrics when FOG_GATEWAY_METRICS_LISTEN is set (e.g. 0.0.0.0:9464).
EXPOSE 8080 9464
# /healthz: the process serves; /readyz: the coordinator answers its gRPC
# health check. No curl in the image: bash speaks enough HTTP/1.0. (With
# --tls-cert the port speaks TLS and this check needs replacing.)
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/fog-gateway"]
