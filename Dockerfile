# The lab's one image: the harness (mock server, inspection proxy, reference
# clients) installed into a venv at /opt/venv.
#
# Online (a registry and PyPI reachable):
#     docker build -t tls-lab:latest .
# Offline (no registry, no PyPI inside the build): let the project build an
# offline Debian base image and a host-side wheelhouse first:
#     python -m harness.lab.images build
# which runs, in effect,
#     docker build --network none --build-arg BASE_IMAGE=tls-lab-base:bookworm \
#                  --build-arg PIP_OFFLINE=1 -t tls-lab:latest .
# Both bases are Debian bookworm with Python 3.11, so host-built cp311 wheels fit.

ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
# 1: install only from build/wheelhouse/ (no index); 0: install the source from PyPI.
ARG PIP_OFFLINE=0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
# Offline: dependencies first, from the wheelhouse only, so that edits to tests
# or docs do not redo this layer.  The [d]/[e] globs let the COPY succeed when
# build/wheelhouse/ is absent (online builds, fresh clones): pyproject.toml is
# there only so the instruction always has one source.
COPY pyproject.toml buil[d]/wheelhous[e] /wheels/
# A venv, not the system interpreter: Debian's python3 refuses pip installs
# into it (PEP 668, "externally-managed-environment").
RUN python3 -m venv /opt/venv \
 && if [ "$PIP_OFFLINE" = 1 ]; then \
        /opt/venv/bin/pip install --no-index --find-links /wheels tls-inspection-lab; \
    fi
# Online: the project's source from the (.dockerignore-filtered) context. It is
# copied whole because fixtures/ may not exist yet in a fresh clone.
COPY . /ctx/
RUN if [ "$PIP_OFFLINE" != 1 ]; then /opt/venv/bin/pip install /ctx; fi \
 && mkdir -p /opt/lab/fixtures \
 && if [ -d /ctx/fixtures ]; then cp -R /ctx/fixtures/. /opt/lab/fixtures/; fi

FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# /opt/venv (the installed lab) and /opt/lab/fixtures, in one layer.
COPY --from=build /opt /opt
# iptables and iproute2 for the transparent gateway (compose services `gateway`,
# `attended-gw`, `beam-gw`) and curl for reviewers and the curl client definitions:
# the offline base has them; python:3.11-slim does not, so an online build installs
# them (an offline build never reaches this apt-get).
RUN if ! command -v iptables >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1 \
       || ! command -v curl >/dev/null 2>&1; then \
        apt-get update && apt-get install -y --no-install-recommends iptables iproute2 curl ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi
# Non-root by default; a compose service that needs iptables or raw sockets
# sets `user: root` and the capability it needs.
# /lab is where the compose lab's state volume mounts: owned by the lab user, so
# a fresh named volume inherits that ownership and the one-shot PKI service can write it.
RUN useradd --create-home --uid 10001 --shell /bin/sh lab \
 && mkdir -p /lab && chown lab:lab /lab && chmod 0700 /lab
USER lab
WORKDIR /opt/lab
CMD ["harness", "--help"]
