"""Helpers shared by the service benchmarks (ingest, decision, submit): not a benchmark itself.

Percentiles, machine load, process RSS/CPU from /proc, a tiny HTTP/1.1 keep-alive client on
asyncio streams (open-loop at a fixed rate, or closed-loop at a fixed concurrency), the rules
file and git repository the service needs, and a runner for `python -m trigger_service serve`.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.repo import GitRepo  # noqa: E402
from tests.support.repo import rules_text as repo_rules_text  # noqa: E402
from tests.support.server import free_port, start_service  # noqa: E402

__all__ = ["free_port", "start_service"]

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def rules_text(
    repo_url: str, concurrency: str = "parallel", debounce: float = 0, max_wait: float = 120
) -> str:
    """The tests' rules file; benchmarks default to parallel runs and no debounce."""
    return repo_rules_text(repo_url, concurrency, debounce, max_wait)


def make_repo(path: Path, pipeline_yaml: str = "# compiled pipeline v1\n") -> str:
    """A git repository holding pipeline.yaml; returns its file:// URL."""
    repo = GitRepo(path)
    repo.commit({"pipeline.yaml": pipeline_yaml}, "init")
    return repo.url


# --- statistics and machine state


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank on the sorted values; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def machine() -> str:
    return f"{platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}"


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process itself (children not included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def maps_mention(pid: int, needle: str) -> bool:
    with open(f"/proc/{pid}/maps") as f:
        return any(needle in line for line in f)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


# --- the service as a subprocess


def service_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {
        "TRIGGER_DATABASE_URL": f"sqlite:///{tmp / 'trigger.db'}",
        "TRIGGER_RULES_PATH": str(tmp / "rules.yaml"),
        "TRIGGER_GIT_CACHE_DIR": str(tmp / "git-cache"),
        "TRIGGER_MODELS_ROOT": str(tmp / "models"),
        "TRIGGER_RUNS_DIR": str(tmp / "runs"),
        "TRIGGER_DATA_DIR": str(tmp / "data"),
        "TRIGGER_BACKEND": "shadow",
        "TRIGGER_LOG_LEVEL": "WARNING",
        # The benchmarks send one signed body many times under new delivery ids, each meant
        # as a new event: the replay window (docs/security.md) would make them one.
        "TRIGGER_REPLAY_WINDOW_SECONDS": "0",
    }
    env.update(extra)
    return env


def start_bare(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """bench/bare_app.py under uvicorn exactly as `serve` runs the service (one process)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    log = log_path.open("ab")
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "bench" / "bare_app.py"), "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bare app exited: {log_path.read_text()[-2000:]}")
        try:
            with socket_connect(port):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("bare app did not start")


def socket_connect(port: int) -> object:
    import socket

    return socket.create_connection(("127.0.0.1", port), timeout=1)


# --- a small HTTP/1.1 keep-alive client (much lighter than httpx, so the load generator
#     disturbs the measured server less on a 2-core machine)

Request = tuple[str, str, dict[str, str], bytes]  # method, path, headers, body


def encode(request: Request) -> bytes:
    method, path, headers, body = request
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds, successful only
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    elapsed: float = 0.0
    first_sent: float = 0.0  # time.time()
    last_answer: float = 0.0  # time.time() of the last 2xx answer
    late_starts: int = 0  # open loop: sends that started > 5 ms after their schedule

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)


async def open_loop(
    port: int, make: Callable[[int], Request], rate: float, duration: float, max_conns: int = 256
) -> LoadResult:
    """Send request i at t0 + i/rate whatever the earlier ones are doing (no coordinated
    omission); latency is measured from the scheduled time, so client lag counts against it."""
    result = LoadResult()
    idle: list[Connection] = []
    total = int(rate * duration)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    result.first_sent = time.time() + 0.05
    tasks = []

    async def one(i: int, due: float) -> None:
        reused = bool(idle)
        conn = idle.pop() if idle else Connection(port)
        data = encode(make(i))
        if loop.time() - due > 0.005:
            result.late_starts += 1
        try:
            status, _ = await conn.send(data)
        except (OSError, asyncio.IncompleteReadError):
            conn.close()
            if not reused:
                result.errors += 1
                return
            # The server closed an idle keep-alive connection (uvicorn: after 5 s): the request
            # never reached it, so send it again on a new connection, as HTTP clients do.
            conn = Connection(port)
            try:
                status, _ = await conn.send(data)
            except (OSError, asyncio.IncompleteReadError):
                result.errors += 1
                conn.close()
                return
        done = loop.time()
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            result.latencies.append(done - due)
            result.last_answer = time.time()
        if len(idle) < max_conns:
            idle.append(conn)
        else:
            conn.close()

    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(i, due)))
    await asyncio.gather(*tasks)
    result.elapsed = loop.time() - start
    for conn in idle:
        conn.close()
    return result


async def closed_loop(
    port: int, make: Callable[[int], Request], total: int, concurrency: int
) -> LoadResult:
    """`concurrency` connections each sending its next request as soon as one is answered."""
    result = LoadResult()
    counter = iter(range(total))
    loop = asyncio.get_running_loop()
    start = loop.time()
    result.first_sent = time.time()

    async def worker() -> None:
        conn = Connection(port)
        for i in counter:
            sent = loop.time()
            try:
                status, _ = await conn.send(encode(make(i)))
            except (OSError, asyncio.IncompleteReadError):
                result.errors += 1
                conn.close()
                conn = Connection(port)
                continue
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if 200 <= status < 300:
                result.latencies.append(loop.time() - sent)
                result.last_answer = time.time()
        conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = loop.time() - start
    return result
