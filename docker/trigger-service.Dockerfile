# syntax=docker/dockerfile:1
# The trigger service: FastAPI + kfp client + git, no TensorFlow.
# Build from the repository root:
#   docker build -f docker/trigger-service.Dockerfile -t ghcr.io/kfp-gitops/trigger-service:0.1.0 .
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# constraints.txt pins every transitive dependency, as `make install` does.
COPY pyproject.toml README.md constraints.txt ./
COPY trigger_service ./trigger_service
COPY pipeline ./pipeline
# Wheels for the project and its runtime dependencies only (no [pipeline] extra: no TensorFlow).
RUN pip wheel --wheel-dir /wheels -c constraints.txt .

FROM python:${PYTHON_VERSION}-slim-bookworm
# git: the GitOps fetch of the pipeline at a commit. ca-certificates: HTTPS git and KFP.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates tini \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HOME=/var/lib/trigger \
    TRIGGER_HOST=0.0.0.0 TRIGGER_PORT=8080
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels kfp-gitops-trigger \
    && rm -rf /wheels \
    && python -c "import sys, trigger_service.cli, trigger_service.api, trigger_service.service; assert 'tensorflow' not in sys.modules" \
    && trigger-service --help > /dev/null \
    && groupadd --system --gid 10001 trigger \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/trigger --no-create-home trigger \
    && install -d -o 10001 -g 10001 /var/lib/trigger
# Git refuses repositories owned by another uid on mounted volumes without this.
RUN git config --system --add safe.directory '*'
WORKDIR /var/lib/trigger
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["tini", "--", "trigger-service"]
CMD ["serve"]
