# The shmframe image: the `shmframe` command and the Python package, run as an unprivileged user.
#
#   docker build -t shmframe .
#   docker run --rm --name cam --ipc shareable --shm-size 64m shmframe write camera
#   docker run --rm --ipc container:cam shmframe read camera --headless
#
# Containers share channels only through a shared IPC namespace: see docs/containers.md and
# examples/compose.yaml. Needs BuildKit (the default builder of current Docker engines; on older
# ones set DOCKER_BUILDKIT=1).
#
# Build arguments:
#   SHMFRAME_FEATURES  cargo features of the binary, e.g. "gstreamer" (video files, RTSP sources)
#   RUST_VERSION, DEBIAN  the public base images' Rust version and Debian release (codename)
#   BUILD_IMAGE, RUNTIME_IMAGE  the base images themselves (any image of that Debian release
#                      with cargo and python3 / with python3 and pip)
#   ARTIFACTS          `build` (default): compile in the `build` stage from the sources;
#                      `prebuilt`: the build context is instead a directory that
#                      `scripts/build-release.sh DIR` filled (the binary and the wheel).
# scripts/docker-image.sh builds this file without any container registry: a local Debian base
# image as RUNTIME_IMAGE and ARTIFACTS=prebuilt (docs/containers.md, "Building offline").
# No `# syntax=` line: the builder's own Dockerfile frontend is used, so nothing is pulled for it.

ARG RUST_VERSION=1
ARG DEBIAN=bookworm
ARG BUILD_IMAGE=rust:${RUST_VERSION}-${DEBIAN}
ARG RUNTIME_IMAGE=python:3.11-slim-${DEBIAN}
ARG ARTIFACTS=build

# ---- build: the release binary and the wheel, by the script CI runs too (the binary without its
# debug information) -------------------------------------------------------------------------------
FROM ${BUILD_IMAGE} AS build
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
    SHMFRAME_FEATURES="$SHMFRAME_FEATURES" scripts/build-release.sh /out \
 && strip /out/shmframe

# ---- prebuilt: the output of scripts/build-release.sh, given as the build context -----------------
FROM scratch AS prebuilt
COPY shmframe *.whl /out/

# ---- artifacts: one of the two above, by ARTIFACTS --------------------------------------------------
# hadolint ignore=DL3006
FROM ${ARTIFACTS} AS artifacts

# ---- runtime ---------------------------------------------------------------------------------------
# hadolint ignore=DL3006
FROM ${RUNTIME_IMAGE}
ARG SHMFRAME_FEATURES=""
# libX11 and libXcursor are loaded at run time by the window of `shmframe read` (X11 forwarding);
# the headless reader and the writer do not need them. Nothing is installed when the base image
# has the packages already (the offline base does: it cannot reach a package mirror).
# hadolint ignore=DL3008
RUN if ! dpkg-query -s libx11-6 libxcursor1 >/dev/null 2>&1; then \
      apt-get update \
      && apt-get install -y --no-install-recommends libx11-6 libxcursor1 \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && case "$SHMFRAME_FEATURES" in *gstreamer*) \
      if ! dpkg-query -s libgstreamer1.0-0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
          >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends libgstreamer1.0-0 \
          gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
        && rm -rf /var/lib/apt/lists/*; \
      fi;; \
    esac
COPY --from=artifacts /out/shmframe /usr/local/bin/shmframe
# The wheel's one dependency, NumPy, comes from the base image when it has it, else from PyPI.
RUN --mount=type=bind,from=artifacts,source=/out,target=/wheels \
    python3 -m pip install --no-cache-dir /wheels/*.whl \
 && python3 -c 'import shmframe'
# The same uid on both sides of a channel is the simplest way to share it (channels are 0600 by
# default); see docs/containers.md for readers under another uid.
RUN groupadd --gid 1000 shmframe \
 && useradd --uid 1000 --gid 1000 --no-create-home --shell /usr/sbin/nologin shmframe
USER 1000:1000
ENTRYPOINT ["shmframe"]
CMD ["--help"]
