"""A pipeline version the backend lost, registered again from what we stored.

The compiled package of every registered version is kept (pipeline_versions.package_path,
with its sha256) next to the commit it came from, so a version deleted in KFP is uploaded again
as the same version: same name (the commit), same file. Raises PermanentError when the stored
package is gone or no longer matches its digest.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, select, update

from trigger_service.database import pipeline_versions, write
from trigger_service.errors import PermanentError
from trigger_service.submit.base import Backend, VersionRef, VersionSpec


def reupload(engine: Engine, backend: Backend, lost: VersionRef) -> VersionRef:
    """Register `lost` again with `backend`; the stored row gets the backend's new ids."""
    with engine.connect() as conn:
        row = conn.execute(
            select(pipeline_versions).where(
                pipeline_versions.c.backend_version_id == lost.version_id
            )
        ).first()
    try:
        content = lost.package_path.read_bytes()
    except OSError as exc:
        raise PermanentError(
            f"version {lost.version} is gone from the backend and its stored package "
            f"{lost.package_path} cannot be read: {exc.strerror}"
        ) from exc
    if row is not None and row.package_sha256 not in (None, hashlib.sha256(content).hexdigest()):
        raise PermanentError(f"the stored package of version {lost.version} changed on disk")
    commit = row.commit if row is not None and row.commit else lost.version
    description = f"{commit} (uploaded again: the backend had lost it)"
    ref = backend.ensure_version(
        VersionSpec(
            pipeline=lost.pipeline,
            version=lost.version,
            package_path=lost.package_path,
            description=description,
        )
    )
    with write(engine) as conn:
        conn.execute(
            update(pipeline_versions)
            .where(pipeline_versions.c.backend_version_id == lost.version_id)
            .values(backend_pipeline_id=ref.pipeline_id, backend_version_id=ref.version_id)
        )
    return ref
