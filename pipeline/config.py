"""Compile-time settings of the pipeline: the one place the container image is chosen.

`python -m pipeline compile --image IMAGE` sets PIPELINE_IMAGE before the components are
imported: `@dsl.component(base_image=base_image())` is evaluated when they are imported.
Components are compiled with install_kfp_package=False: the image already has kfp (it installs
this package), so no step runs `pip install kfp` at start (slow, and impossible offline).
"""

from __future__ import annotations

import os

DEFAULT_IMAGE = "ghcr.io/kfp-gitops/pipeline:latest"
IMAGE_ENV = "PIPELINE_IMAGE"


def base_image() -> str:
    return os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE


# kfp-kubernetes 2.17 takes the PVC *name* as a pipeline parameter, but the mount path must be
# a constant: on a cluster, `models_root` must be this path (its default) or below it.
MODELS_MOUNT_PATH = "/models"
# The Secret whose keys become the fetch step's environment (optional: local paths need none).
S3_SECRET_NAME = "pipeline-s3"
S3_SECRET_KEYS = ("S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "S3_SECURE")

# Retries cover a pod or the object store having a bad moment; kfp.local honours them too, so a
# permanently wrong URI costs 5 + 10 s of backoff before the run fails.
FETCH_RETRIES = 2
FETCH_BACKOFF = "5s"
TRAIN_RESOURCES = {
    "cpu_request": "1",
    "cpu_limit": "2",
    "memory_request": "2G",
    "memory_limit": "4G",
}
