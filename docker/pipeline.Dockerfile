# syntax=docker/dockerfile:1
# The base image of the training pipeline's components: TensorFlow (CPU), tf2onnx, onnxruntime,
# the minio client and this repository's `pipeline` package. The compiled pipeline's
# `base_image` must name this image (see docs/deployment.md).
# Build from the repository root:
#   docker build -f docker/pipeline.Dockerfile -t ghcr.io/kfp-gitops/pipeline:0.1.0 .
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# constraints.txt pins every transitive dependency, as `make install` does.
COPY pyproject.toml README.md constraints.txt ./
COPY trigger_service ./trigger_service
COPY pipeline ./pipeline
RUN pip wheel --wheel-dir /wheels -c constraints.txt '.[pipeline]'

FROM python:${PYTHON_VERSION}-slim-bookworm
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    HOME=/home/pipeline
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels 'kfp-gitops-trigger[pipeline]' \
    && rm -rf /wheels \
    && python -c "import tensorflow, tf2onnx, onnxruntime, minio, pipeline" \
    && groupadd --system --gid 10001 pipeline \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/pipeline pipeline
WORKDIR /home/pipeline
# KFP launches components with its own command; the image needs no entrypoint.
# Files written to the models PVC get this uid; the model servers only read them.
USER 10001:10001
