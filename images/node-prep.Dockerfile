# The node-prep image of the Helm chart's optional DaemonSet (values `nodePrep.enabled`): a
# small Debian with kmod, so that its privileged init container can `modprobe -a snd-dummy
# snd-seq` from the host's /lib/modules (mounted read-only) on every node it runs on.
#
#   docker build -f images/node-prep.Dockerfile -t midihub/node-prep:0.1.0 images
#
# The image holds no project code; the chart supplies the commands.

FROM debian:bookworm-slim
# Debian packages are not pinned to exact versions (hadolint DL3008): the base image pins the
# Debian release, and the archive drops superseded versions at every security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends kmod \
    && rm -rf /var/lib/apt/lists/*
LABEL org.opencontainers.image.title="midihub node-prep" \
      org.opencontainers.image.description="kmod on Debian, to load the dummy sound card and the ALSA sequencer on Kubernetes nodes" \
      org.opencontainers.image.licenses="Apache-2.0"
