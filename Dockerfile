# syntax=docker/dockerfile:1

# ---- build ----
FROM rust:1.95-slim-bookworm AS builder

# aws-lc-rs needs a C compiler and cmake; SQLite is bundled (compiled from C).
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
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

COPY src ./src
COPY migrations ./migrations
COPY config ./config
COPY openapi.yaml ./openapi.yaml
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && strip target/release/sessiond

# ---- runtime ----
FROM debian:bookworm-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 sessiond \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
    --shell /usr/sbin/nologin sessiond \
 && mkdir -p /app/data \
 && chown -R sessiond:sessiond /app/data

WORKDIR /app

COPY --from=builder /build/target/release/sessiond /usr/local/bin/sessiond
COPY config /app/config

ENV SESSIOND_ENV=production \
    PORT=8080

USER sessiond
VOLUME ["/app/data"]
EXPOSE 8080

CMD ["sessiond", "serve"]
