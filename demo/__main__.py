"""The embedded default for a newcomer: no cluster, SQLite, the local KFP runner.

    python -m demo run    prepare var/, start the service, print curl lines
                          (--port, --s3-port; `make run PORT=8081 S3_PORT=9100`)
    python -m demo loop   the whole loop with nobody at the keyboard: start the service, send a
                          manual trigger, a MinIO storage event and an Alertmanager alert, wait
                          for the runs, print the published models with their lineage, stop

Everything lives under ./var: demo data, an S3 server on loopback (moto, which speaks the S3
protocol) holding it, a rules file whose code trigger watches this repository itself, demo
secrets (generated once, printed at start), the SQLite store, run logs and published models.
Run it from the repository root (`make run`, `make demo` do).
"""

from __future__ import annotations

import argparse
import sys

from demo.loop import cmd_loop
from demo.run import cmd_run


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` and run the command; its exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the controller on the embedded default")
    run.add_argument("--var", default="var")
    run.add_argument("--port", type=int, default=8080, help="the service's port (8080)")
    run.add_argument(
        "--s3-port", type=int, default=0, help="the demo S3 server's port (0: any free one)"
    )
    run.set_defaults(func=cmd_run)
    loop = sub.add_parser("loop", help="the whole loop, then stop")
    loop.add_argument("--var", default="var/demo-loop")
    loop.add_argument("--timeout", type=float, default=600)
    loop.add_argument("--keep", action="store_true", help="keep the previous loop's var folder")
    loop.set_defaults(func=cmd_loop)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
