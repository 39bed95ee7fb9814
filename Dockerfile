# syntax=docker/dockerfile:1
# The shmframe image: the `shmframe` command and the Python package, run as an unprivileged user.
#
#   docker build -t shmframe .
#   docker run --rm --name cam --ipc shareable --shm-size 64m shmframe write camera
#   docker run --rm --ipc container:cam shmframe read camera --headless
#
# Containers share channels only through a shared IPC namespace: see docs/containers.md and
# examples/compose.yaml. Build arguments: SHMFRAME_FEATURES (cargo features of the binary, e.g.
# "gstreamer" for video files and RTSP sources), RUST_VERSION, DEBIAN (release codename).

ARG RUST_VERSION=1
ARG DEBIAN=bookworm

# ---- build: the release binary and the wheel, by the script CI runs too --------------------------
FROM rust:${RUST_VERSION}-${DEBIAN} AS build
ARG SHMFRAME_FEATURES=""
# Debian's package versions are pinned by the release (DEBIAN), not one by one.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && case "$SHMFRAME_FEATURES" in *gstreamer*) \
      apt-get install -y --no-install-recommends \
        libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev;; \
    esac \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/maturin \
 && /opt/maturin/bin/pip install --no-cache-dir 'maturin>=1.7,<2'
ENV PATH="/opt/maturin/bin:${PATH}"
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    SHMFRAME_FEATURES="$SHMFRAME_FEATURES" scripts/build-release.sh /out

# ---- runtime ---------------------------------------------------------------------------------------
FROM python:3.11-slim-${DEBIAN}
ARG SHMFRAME_FEATURES=""
# libX11 and libXcursor are loaded at run time by the window of `shmframe read` (X11 forwarding);
# the headless reader and the writer do not need them.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libx11-6 libxcursor1 \
 && case "$SHMFRAME_FEATURES" in *gstreamer*) \
      apt-get install -y --no-install-recommends libgstreamer1.0-0 \
        gstreamer1.0-plugins-base gstreamer1.0-plugins-good;; \
    esac \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/shmframe /usr/local/bin/shmframe
RUN --mount=type=bind,from=build,source=/out,target=/wheels \
    pip install --no-cache-dir /wheels/*.whl
# The same uid on both sides of a channel is the simplest way to share it (channels are 0600 by
# default); see docs/containers.md for readers under another uid.
RUN groupadd --gid 1000 shmframe \
 && useradd --uid 1000 --gid 1000 --no-create-home --shell /usr/sbin/nologin shmframe
USER 1000:1000
ENTRYPOINT ["shmframe"]
CMD ["--help"]
