# The image Render (render.yaml), Railway (railway.json) and `docker run` start. tests/deploy.rs
# checks it against the repository: every file it copies exists, the build sees every file the
# crate embeds, and it runs the binary Cargo builds. scripts/container-test builds it with podman
# and smoke-tests the image on SQLite and PostgreSQL (CI runs it).
#
# No `# syntax=` line: BuildKit would fetch that frontend from Docker Hub before building, and
# nothing here needs more than the built-in one.

# ---- build ----
FROM rust:1.95-slim-bookworm AS builder

# aws-lc-rs needs a C compiler and cmake; SQLite is bundled (compiled from C); webauthn-rs
# (passkeys) links the system OpenSSL, found through pkg-config.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /build

# Cache dependencies: build once with dummy sources.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src target/release/sessiond target/release/deps/sessiond-* \
    target/release/deps/libsessiond-* target/release/.fingerprint/sessiond-*

# Compiled into the binary: the migrations (sqlx::migrate!), config/default.toml and
# openapi.yaml (include_str!). Nothing else is read from disk but config/$SESSIOND_ENV.toml.
COPY src ./src
COPY migrations ./migrations
COPY config ./config
COPY openapi.yaml ./openapi.yaml
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && strip target/release/sessiond

# ---- runtime ----
FROM debian:bookworm-slim

# ca-certificates: the binary bundles its own TLS roots, but a PostgreSQL URL may name the
# system store (sslrootcert=/etc/ssl/certs/ca-certificates.crt). libssl3: the OpenSSL that
# webauthn-rs verifies passkey signatures with (linked dynamically). Nothing of apt stays in the
# layer: `apt-get update` also writes 77 MB of package caches to /var/cache/apt, which Docker
# Hub's slim image drops by an apt setting of its own but a base image made elsewhere keeps.
# A plain (not --system) user: a fixed uid above the system range makes `useradd --system` warn.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && groupadd --gid 10001 sessiond \
 && useradd --uid 10001 --gid 10001 --home-dir /app --no-create-home --no-log-init \
    --shell /usr/sbin/nologin sessiond \
 && mkdir -p /app/data \
 && chown -R 10001:10001 /app/data

WORKDIR /app

COPY --from=builder /build/target/release/sessiond /usr/local/bin/sessiond
COPY config /app/config

# Absolute paths, so that `sessiond …` started from a shell in any directory reads the same
# config/production.toml and the same SQLite file. The host's DATABASE_URL and PORT take
# precedence over these defaults.
ENV SESSIOND_ENV=production \
    SESSIOND_CONFIG_DIR=/app/config \
    SESSIOND__DATABASE__URL=sqlite:///app/data/sessiond.db \
    PORT=8080

# Numeric, so that a host which refuses to run as root can tell without reading /etc/passwd.
USER 10001:10001
# No VOLUME instruction: Railway refuses to build a Dockerfile that has one. Mount a volume on
# /app/data to keep a SQLite database (see README, "Deploy").
EXPOSE 8080

# No HEALTHCHECK: the image has no HTTP client to run one (sessiond has no such subcommand), and
# Render and Railway ignore it anyway: they probe /readyz themselves (render.yaml, railway.json).
# Exec form: sessiond is PID 1 and receives the host's SIGTERM itself.
CMD ["sessiond", "serve"]
