# logbridge image for the demo stack (docker-compose.yml). Not built on the
# development machines (they have no Docker engine); see README "Demo stack".
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# tests/ holds the benchmarks the manifest declares; the release build does not use them.
COPY tests ./tests
RUN cargo build --release --bin logbridge

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/logbridge /usr/local/bin/logbridge
COPY pipelines /etc/logbridge/pipelines
COPY config/docker.toml /etc/logbridge/logbridge.toml
VOLUME /var/lib/logbridge
EXPOSE 9092 9600 5044
ENTRYPOINT ["logbridge"]
CMD ["serve", "--config", "/etc/logbridge/logbridge.toml"]
