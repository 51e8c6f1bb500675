# syntax=docker/dockerfile:1
# riverlog container image: build with cargo, run on a small Debian base as a
# non-root user. The Helm chart in helm/riverlog/ relies on the paths, user,
# ports and entrypoint below (tests/helm checks that they agree).

# ---- build ----
FROM rust:1.95-bookworm AS build
# The build context has no .git: `riverlog --version` names this commit
# (`--build-arg RIVERLOG_GIT_COMMIT=$(git rev-parse --short HEAD)`).
ARG RIVERLOG_GIT_COMMIT=unknown
ENV RIVERLOG_GIT_COMMIT=${RIVERLOG_GIT_COMMIT}
WORKDIR /src
# Manifests first, so dependency builds are cached across source changes.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY migrations ./migrations
COPY src ./src
# A workspace member: cargo needs it present to read the workspace, though
# only the server is built.
COPY bench ./bench
COPY README.md ./README.md
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release --bin riverlog \
 && install -D -m 0755 target/release/riverlog /out/riverlog \
 && mkdir -p /out/data

# ---- runtime ----
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 riverlog \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --shell /usr/sbin/nologin riverlog
COPY --from=build /out/riverlog /usr/local/bin/riverlog
COPY --from=build --chown=10001:10001 /out/data /data
USER 10001:10001
WORKDIR /data
ENV RIVERLOG_LISTEN=0.0.0.0:50051 \
    RIVERLOG_HTTP_LISTEN=0.0.0.0:8080 \
    RIVERLOG_DATABASE_URL=sqlite:///data/riverlog.db
VOLUME ["/data"]
# gRPC (with grpc.health.v1 and reflection), then HTTP (REST, SSE, console, /metrics).
EXPOSE 50051 8080
ENTRYPOINT ["/usr/local/bin/riverlog", "serve"]
