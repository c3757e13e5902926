"""The real app served by uvicorn on a loopback port, in a thread of the test process.

For end-to-end tests that need a backend the `serve` subprocess cannot be given (the local
backend with a stand-in pipeline command): the HTTP server, routes and worker are the real ones.

    with serving(services) as url:
        httpx.get(f"{url}/readyz")
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn

from tests.support.server import free_port
from trigger_service.api import create_app
from trigger_service.service import Services


@contextlib.contextmanager
def serving(services: Services, start_worker: bool = True) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(services, start_worker=start_worker),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the in-process server on port {port} did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
