"""A person's `POST /trigger`: Bearer token, a small JSON body naming the pipeline."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from trigger_service.errors import RejectedInput
from trigger_service.events import Event, EventKind, ManualSubject, make_event_id
from trigger_service.sources._auth import check_authorization
from trigger_service.sources._json import load_object, opt, req, scalar_dict
from trigger_service.versions.refs import version_name

WHAT = "manual trigger"
FIELDS = frozenset({"pipeline", "version", "params", "reason"})


class ManualSource:
    name = "manual"
    route = "/trigger"
    secret_setting = "manual_token"
    max_body_setting = "max_body_bytes"
    media_types: tuple[str, ...] = ("application/json",)
    summary = "Trigger a pipeline by hand (Bearer token; JSON {pipeline, version?, params?})"

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> None:
        check_authorization(headers, secret, WHAT, basic=False)

    def parse(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Event]:
        payload = load_object(body, WHAT)
        version = opt(payload, "version", str, WHAT)
        # A person typing `paramz` should hear about it, not get a run without parameters.
        unknown = sorted(set(payload) - FIELDS)
        if unknown:
            raise RejectedInput(f"{WHAT}: unknown field(s) {', '.join(unknown)!r:.80}")
        subject = ManualSubject(
            pipeline=req(payload, "pipeline", str, WHAT),
            # A commit id, a short one (git resolves it when the run fires) or a branch: never
            # an option or a path, whatever reaches git later.
            version=None if version is None else version_name(version, f"{WHAT}: field version"),
            params=scalar_dict(payload, "params", WHAT),
            reason=opt(payload, "reason", str, WHAT) or "",
            requested_by=headers.get("x-requested-by", "").strip() or None,
        )
        # Without an Idempotency-Key every request is a new trigger.
        key = headers.get("idempotency-key", "").strip() or None
        return [
            Event(
                id=make_event_id("manual", key or f"uuid4:{uuid.uuid4()}"),
                kind=EventKind.MANUAL,
                source=self.name,
                subject=subject,
                received_at=received_at,
                delivery_id=key,
            )
        ]


source = ManualSource()
