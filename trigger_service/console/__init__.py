"""The operator console at /ui: server-rendered pages (Jinja2) over the same reads and operations
as the JSON API, a stylesheet and a few lines of own JavaScript for live refresh and log streams."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from trigger_service.console.routes import router


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=Path(__file__).parent / "static"), "ui-static")
