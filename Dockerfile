# syntax=docker/dockerfile:1
# One image for the kube-gtm binaries (gtm-operator, gtm-dnspod, gtm-prober) and the e2e test
# backend (gtm-test-backend). The chart picks the binary with `command`; there is no shell in the
# image.
#
#   docker build -t kube-gtm:dev .        (or: make images)

ARG RUST_VERSION=1
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# The whole workspace (.dockerignore leaves out target/ and .git/); the registry and target caches
# persist across builds, so a code change rebuilds only what changed.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin gtm-operator --bin gtm-dnspod --bin gtm-prober \
      --bin gtm-test-backend \
 && mkdir -p /out \
 && cp target/release/gtm-operator target/release/gtm-dnspod target/release/gtm-prober \
      target/release/gtm-test-backend /out/

# Distroless "cc": glibc and libgcc only, user 65532 (nonroot), no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="kube-gtm" \
      org.opencontainers.image.description="kube-gtm operator, authoritative DNS pod and probe location" \
      org.opencontainers.image.source="https://github.com/kube-gtm/kube-gtm" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
# DNS on an unprivileged port (the Service maps 53 to it); HTTP for metrics and probes.
EXPOSE 5353/udp 5353/tcp 8080/tcp 8081/tcp
ENTRYPOINT ["/usr/local/bin/gtm-dnspod"]
