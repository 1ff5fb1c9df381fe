# syntax=docker/dockerfile:1
#
# One Dockerfile, one target per image (`docker build --target NAME .`):
#
#   worker      the long-running ECS Fargate consumer: python -m services.worker
#   producer    \
#   autoscaler   > Lambda images: the runtime interface client (awslambdaric) runs
#   postproc    /  services.<name>.handler.handler; compose runs the same image with
#                  `python -m services.<name> serve` as its entrypoint
#   tools       the local stack's helpers: replay server (default), bootstrap, scheduler
#
# Each image gets only what its service needs: the worker and tools the whole project;
# each Lambda the project without dependencies plus the list in deploy/images/<name>.txt,
# all at the versions of constraints.txt. The project is the wheel of rnr/ and services/;
# the development stand-ins (devstack/) are copied into the local-only tools image and
# into no image that runs in AWS.
#
# The base image is pinned by tag and by the digest of its multi-architecture index.
# Dependabot (docker ecosystem, .github/dependabot.yml) or Renovate must refresh both
# together: a pinned digest never receives Debian or CPython security fixes by itself.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# ---------------------------------------------------------------------------
# builder: the sources and an empty virtualenv at /opt/venv
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# README* may not exist yet; an empty wildcard match is allowed.
COPY pyproject.toml constraints.txt README* ./
COPY deploy/images ./deploy/images
COPY rnr ./rnr
COPY services ./services

# The whole project and its pinned dependency tree (worker and tools).
FROM builder AS builder-full
RUN pip install --no-cache-dir -c constraints.txt .

# A Lambda: its own dependency list, then the project without dependencies.
FROM builder AS builder-producer
RUN pip install --no-cache-dir -c constraints.txt -r deploy/images/producer.txt \
    && pip install --no-cache-dir --no-deps .

FROM builder AS builder-autoscaler
RUN pip install --no-cache-dir -c constraints.txt -r deploy/images/autoscaler.txt \
    && pip install --no-cache-dir --no-deps .

FROM builder AS builder-postproc
RUN pip install --no-cache-dir -c constraints.txt -r deploy/images/postproc.txt \
    && pip install --no-cache-dir --no-deps .

# ---------------------------------------------------------------------------
# runtime: what every final image shares; runs as an unprivileged user
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NUMBA_CACHE_DIR=/tmp/numba-cache
RUN groupadd --system --gid 10001 rnr \
    && useradd --system --uid 10001 --gid rnr --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin rnr
WORKDIR /app

# ---------------------------------------------------------------------------
# worker: ready only while its consumer is active (GET /readyz)
# ---------------------------------------------------------------------------
FROM runtime AS worker
COPY --from=builder-full /opt/venv /opt/venv
# The routing kernel's numba cache, compiled into the image: without it every new task
# compiles for seconds before it is ready. numba (0.68) finds a cache entry by the
# source file's path and a SHA-256 of its content (not its modification time, so COPY's
# timestamps cannot invalidate it; the path is the venv's, the same at run time), and by
# the CPU it compiles for. The build machine's CPU is not Fargate's, so the kernel is
# compiled for a named baseline instead of the host: x86-64-v3 (AVX2, FMA; every Fargate
# x86 host has them), set the same at build and at run time (ENV); another baseline:
# --build-arg NUMBA_CPU_NAME=<llvm cpu>. numba needs the cache folder writable even to
# read it (it probes with a temporary file), hence the chown to the runtime user.
ARG NUMBA_CPU_NAME=x86-64-v3
ENV NUMBA_CACHE_DIR=/opt/numba-cache \
    NUMBA_CPU_NAME=${NUMBA_CPU_NAME} \
    NUMBA_CPU_FEATURES=""
RUN python -c "from rnr.hydro.muskingum_cunge import warm_up; warm_up()" \
    && chown -R 10001:10001 /opt/numba-cache
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('HTTP_PORT', '8080'), timeout=4)"]
CMD ["python", "-m", "services.worker"]

# ---------------------------------------------------------------------------
# Lambda images: the runtime interface client runs the handler CMD names
# ---------------------------------------------------------------------------
FROM runtime AS lambda-runtime
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["python", "-m", "awslambdaric"]

FROM lambda-runtime AS producer
COPY --from=builder-producer /opt/venv /opt/venv
CMD ["services.producer.handler.handler"]

FROM lambda-runtime AS autoscaler
COPY --from=builder-autoscaler /opt/venv /opt/venv
CMD ["services.autoscaler.handler.handler"]

FROM lambda-runtime AS postproc
COPY --from=builder-postproc /opt/venv /opt/venv
CMD ["services.postproc.handler.handler"]

# ---------------------------------------------------------------------------
# tools: replay server (default command), bootstrap and scheduler for the local stack
# ---------------------------------------------------------------------------
FROM runtime AS tools
COPY --from=builder-full /opt/venv /opt/venv
# Not installed: python -m runs it from the working directory, /app.
COPY devstack ./devstack
USER 10001:10001
EXPOSE 8090
CMD ["python", "-m", "devstack.replay", "--host", "0.0.0.0", "--port", "8090"]
