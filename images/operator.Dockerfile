# syntax=docker/dockerfile:1
# The midihub operator image: the controller that turns each MidiHub into a hub pod.
#
# Build it from the repository root (the whole Cargo workspace is the context; .dockerignore
# keeps target/ out):
#
#   docker build -f images/operator.Dockerfile -t midihub/operator:0.1.0 .
#
# The image runs as the unprivileged user 65532 and serves /healthz and /metrics on port 8080;
# `docker run --rm midihub/operator:0.1.0 --help` lists its settings.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# Every workspace member is copied: Cargo reads all members' manifests even to build one crate.
COPY Cargo.toml Cargo.lock ./
COPY api api
COPY runtime runtime
COPY operator operator
COPY hub-sidecar hub-sidecar
COPY tests tests
# The caches keep downloaded crates and compiled dependencies between builds; the binary is
# copied out of the cached target directory, which does not end up in the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p midihub-operator --bin midihub-operator \
    && install -D -m 0755 target/release/midihub-operator /out/midihub-operator

# distroless/cc has the C runtime the binary links against (glibc, libgcc) and nothing else;
# kube talks TLS through rustls, so no OpenSSL is needed.
FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="midihub-operator" \
      org.opencontainers.image.description="The MidiHub operator: runs scheduled, scale-to-zero RTP-MIDI hubs on Kubernetes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=builder /out/midihub-operator /usr/local/bin/midihub-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/midihub-operator"]
