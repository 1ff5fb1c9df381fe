# syntax=docker/dockerfile:1
#
# One Dockerfile, three images (build one with `docker build --target NAME .`):
#
#   worker  the long-running ECS Fargate consumer: python -m services.worker
#   lambda  producer, autoscaler and postproc: the AWS Lambda runtime interface client
#           (awslambdaric) runs services.<name>.handler.handler; locally compose
#           overrides the entrypoint to `python -m services.<name> serve`
#   tools   the local stack's helpers: replay server (default), bootstrap, scheduler
#
# The base image is pinned by tag and by the digest of its multi-architecture index.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# ---------------------------------------------------------------------------
# builder: the project and its pinned dependency tree in a virtualenv at /opt/venv
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
COPY rnr ./rnr
COPY services ./services
RUN pip install --no-cache-dir -c constraints.txt .

# The Lambda images add the runtime interface client (the `lambda` extra).
FROM builder AS builder-lambda
RUN pip install --no-cache-dir -c constraints.txt ".[lambda]"

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
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('HTTP_PORT', '8080'), timeout=4)"]
CMD ["python", "-m", "services.worker"]

# ---------------------------------------------------------------------------
# lambda: one image for the three scheduled functions; CMD names the handler
# ---------------------------------------------------------------------------
FROM runtime AS lambda
COPY --from=builder-lambda /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["python", "-m", "awslambdaric"]
CMD ["services.producer.handler.handler"]

# ---------------------------------------------------------------------------
# tools: replay server (default command), bootstrap and scheduler for the local stack
# ---------------------------------------------------------------------------
FROM runtime AS tools
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8090
CMD ["python", "-m", "rnr.replay", "--host", "0.0.0.0", "--port", "8090"]
