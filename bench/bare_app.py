"""The baseline for bench/ingest_bench.py: a FastAPI app that reads the body and answers 202.

Stores nothing, verifies nothing. Served by uvicorn exactly the way `trigger_service serve`
serves the real app (one process, log_config=None, access_log=False), so the difference in
throughput is what the service does per request (verify, parse, durable store).

    .venv/bin/python bench/bare_app.py --port 8099
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.post("/webhooks/github", status_code=202)
async def receive(request: Request) -> Response:
    body = await request.body()
    return Response(b'{"bytes": %d}' % len(body), status_code=202, media_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
