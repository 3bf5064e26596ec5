# syntax=docker/dockerfile:1
# fog-agent, the node agent. Build from the repository root (the build context):
#   DOCKER_BUILDKIT=1 docker build -f deploy/docker/agent.Dockerfile -t fogplane/agent:dev .
# BuildKit reads agent.Dockerfile.dockerignore next to this file.
#
# The entrypoint joins once (fog-agent-join-once: skipped when the state
# directory already holds node.crt) and then execs `fog-agent run` with the
# container's arguments. exec tasks run inside this container as the agent's
# user: install what they need in an image built FROM this one, and list the
# commands with --allow-command / allow_commands.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,id=fogplane-target,sharing=locked \
    CARGO_PROFILE_AGENT_STRIP=debuginfo \
    cargo build --profile agent --locked -p fog-agent \
 && install -D -m 0755 -t /out target/agent/fog-agent

FROM ${RUNTIME_IMAGE}
# tini as PID 1 reaps what exec tasks leave behind (a daemonising grandchild
# is re-parented to PID 1); /bin/sh is needed too: exec tasks with a memory
# reservation run as `/bin/sh -c 'ulimit -v …; exec …'`. ca-certificates: the
# system's root certificates, which verify an https:// OTLP collector.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 fog \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin fog \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/fog-agent
COPY --from=build /out/fog-agent /usr/local/bin/fog-agent
COPY --chmod=0755 deploy/scripts/fog-agent-join-once /usr/local/bin/
USER 10001:10001
ENV FOG_AGENT_STATE_DIR=/var/lib/fog-agent
VOLUME ["/var/lib/fog-agent"]
# No HEALTHCHECK: the agent serves no port. It reconnects by itself (full-
# jitter backoff) and exits on a bad configuration (64), a start-up error (1)
# or a signal.
ENTRYPOINT ["/usr/bin/tini", "--", "/bin/sh", "-c", "fog-agent-join-once && exec fog-agent run \"$@\"", "fog-agent"]
