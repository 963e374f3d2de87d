# syntax=docker/dockerfile:1
# The hub-sidecar image: runs beside rtpmidid in every hub pod (`hub-sidecar kubernetes`),
# wires each room's participants through the ALSA sequencer and publishes them to the MidiHub.
#
# Build it from the repository root (the whole Cargo workspace is the context; .dockerignore
# keeps target/ out):
#
#   docker build -f images/hub-sidecar.Dockerfile -t midihub/hub-sidecar:0.1.0 .
#
# The operator starts it with the arguments `kubernetes`; `docker run --rm
# midihub/hub-sidecar:0.1.0 --help` lists its settings (local mode too).

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim
# Debian packages are not pinned to exact versions (hadolint DL3008): the base images pin the
# Debian release, and the archive drops superseded versions at every security update, which
# would break a pinned build.

FROM ${RUST_IMAGE} AS builder
# The alsa crate links against libasound, found through pkg-config.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libasound2-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
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
    cargo build --release --locked -p hub-sidecar --bin hub-sidecar \
    && install -D -m 0755 target/release/hub-sidecar /out/hub-sidecar

# Debian slim rather than distroless: the sidecar needs libasound2 (and its configuration in
# /usr/share/alsa) at run time, built for the same Debian release as the builder.
FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="hub-sidecar" \
      org.opencontainers.image.description="Runs beside rtpmidid in a MIDI hub: wires participants together through the ALSA sequencer and publishes participants and latency" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libasound2 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /out/hub-sidecar /usr/local/bin/hub-sidecar
# Fail the build, not the pod, when a shared library the binary needs is missing.
RUN libraries="$(ldd /usr/local/bin/hub-sidecar)" \
    && case "$libraries" in *"not found"*) echo "$libraries" >&2; exit 1 ;; esac
# No USER: with the operator's default (privileged) device access the container runs as the
# image's user and must open the node's /dev/snd/seq, which belongs to root and the audio group.
# With device-plugin access the operator sets user 65532 and the audio group itself.
ENTRYPOINT ["/usr/local/bin/hub-sidecar"]
CMD ["--help"]
