"""TCP ports on loopback: a free one, and why a chosen one cannot be used."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_problem(name: str, port: int) -> str | None:
    """Why `port` cannot be used on 127.0.0.1 now (out of range, or taken), or None."""
    if not 1 <= port <= 65535:
        return f"{name}={port} is not a TCP port (1-65535)"
    with socket.socket() as sock:
        # As the servers bind: a port left in TIME_WAIT is free, one with a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return f"{name}={port} cannot be used on 127.0.0.1 ({exc.strerror})"
    return None
