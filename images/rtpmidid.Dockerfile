# syntax=docker/dockerfile:1
# The rtpmidid image: the RTP-MIDI (AppleMIDI) daemon of every hub pod, built from a pinned
# upstream release of github.com/davidmoreno/rtpmidid (daemon GPL-3.0+, library LGPL-2.1+).
# Its source is the upstream tag named below with midihub's patches applied
# (images/rtpmidid-patches/, each saying what it fixes; scripts/build-rtpmidid builds the same
# for the tests).
#
# Build it from the repository root (the context gives the patches; the source is cloned from
# upstream at the pinned tag):
#
#   docker build -f images/rtpmidid.Dockerfile -t midihub/rtpmidid:26.01 .
#   docker build -f images/rtpmidid.Dockerfile --build-arg RTPMIDID_VERSION=26.01 -t midihub/rtpmidid:26.01 .
#
# The ENTRYPOINT is the rtpmidid binary: the operator passes `--ini /etc/rtpmidid/rtpmidid.ini`
# (the hub's ConfigMap, mounted there) as the container's arguments.

ARG DEBIAN_IMAGE=debian:bookworm-slim
# Debian packages are not pinned to exact versions (hadolint DL3008): the base image pins the
# Debian release, and the archive drops superseded versions at every security update, which
# would break a pinned build.

FROM ${DEBIAN_IMAGE} AS builder
# Bookworm's g++ 12 has no <format>, so rtpmidid builds as C++17 with libfmt.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates git cmake ninja-build g++ pkg-config \
        libavahi-client-dev libasound2-dev libfmt-dev \
    && rm -rf /var/lib/apt/lists/*
ARG RTPMIDID_VERSION=26.01
WORKDIR /src
# With the tag checked out, the build's `git describe` stamps the release into `rtpmidid --version`.
RUN git clone --depth 1 --branch "v${RTPMIDID_VERSION}" https://github.com/davidmoreno/rtpmidid .
COPY images/rtpmidid-patches/ /patches/
RUN for patch in /patches/*.patch; do git apply --verbose "$patch" || exit 1; done
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DENABLE_TESTS=OFF \
    && ninja -C build src/rtpmidid \
    && install -D -m 0755 build/src/rtpmidid /out/rtpmidid

FROM ${DEBIAN_IMAGE}
ARG RTPMIDID_VERSION=26.01
LABEL org.opencontainers.image.title="rtpmidid" \
      org.opencontainers.image.description="rtpmidid ${RTPMIDID_VERSION}, the RTP-MIDI daemon of midihub's hub pods, built from the upstream release with midihub's patches" \
      org.opencontainers.image.version="${RTPMIDID_VERSION}" \
      org.opencontainers.image.source="https://github.com/davidmoreno/rtpmidid" \
      org.opencontainers.image.licenses="GPL-3.0-or-later AND LGPL-2.1-or-later" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libasound2 libavahi-client3 libfmt9 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /out/rtpmidid /usr/local/bin/rtpmidid
# Fail the build, not the pod, when a shared library the binary needs is missing.
RUN libraries="$(ldd /usr/local/bin/rtpmidid)" \
    && case "$libraries" in *"not found"*) echo "$libraries" >&2; exit 1 ;; esac \
    && mkdir -p /etc/rtpmidid /run/rtpmidid
# No USER: with the operator's default (privileged) device access the container runs as the
# image's user and must open the node's /dev/snd/seq, which belongs to root and the audio group.
# With device-plugin access the operator sets user 65532 and the audio group itself.
ENTRYPOINT ["/usr/local/bin/rtpmidid"]
CMD ["--ini", "/etc/rtpmidid/rtpmidid.ini"]
