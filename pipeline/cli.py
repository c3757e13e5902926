"""`python -m pipeline compile | run --local | demo-data`: the pipeline's command line.

The trigger service runs `run --local ... --result-file FILE` in a subprocess and reads FILE,
so the flags and the result file's fields are a contract.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from pipeline.config import IMAGE_ENV


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        # Task output is relayed line by line; a person (or a log pipe) should see it at once.
        sys.stdout.reconfigure(line_buffering=True)
    return int(args.handler(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    compile_cmd = commands.add_parser("compile", help="write the KFP pipeline YAML")
    compile_cmd.add_argument("--output", type=Path, required=True)
    compile_cmd.add_argument("--image", help="container image of every step")
    compile_cmd.set_defaults(handler=_compile)

    run = commands.add_parser("run", help="run the pipeline")
    run.add_argument(
        "--local",
        action="store_true",
        required=True,
        help="run with kfp.local on this machine (the only mode)",
    )
    run.add_argument("--data-uri", required=True)
    run.add_argument("--models-root", required=True)
    run.add_argument("--model-name", required=True)
    run.add_argument("--epochs", type=int)
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any parameter of the pipeline (or of --package), typed as the pipeline declares it",
    )
    run.add_argument("--package", type=Path, help="run this compiled pipeline YAML instead")
    run.add_argument(
        "--pipeline-root",
        type=Path,
        help="keep artifacts here (default: a temporary folder, removed)",
    )
    run.add_argument("--result-file", type=Path, help="write the run's result as JSON")
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo-data", help="write a deterministic demo dataset")
    demo.add_argument("--output", type=Path, required=True, help=".csv or .parquet")
    demo.add_argument("--rows", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=42)
    demo.set_defaults(handler=_demo_data)
    return parser


def _compile(args: argparse.Namespace) -> int:
    if args.image:
        os.environ[IMAGE_ENV] = args.image  # read by pipeline.config when components load
    from kfp import compiler

    from pipeline.definition import training_pipeline

    args.output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(training_pipeline, str(args.output))
    print(f"wrote {args.output}")
    return 0


def split_pairs(pairs: list[str]) -> dict[str, str]:
    """`KEY=VALUE` strings as a dict; the pipeline's own parameter types convert the values."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {pair!r}: expected KEY=VALUE")
        params[key] = value
    return params


def _run(args: argparse.Namespace) -> int:
    from pipeline.local import RunResult, run_local

    started = time.monotonic()
    try:
        arguments: dict[str, object] = {
            "data_uri": args.data_uri,
            "models_root": str(Path(args.models_root).resolve()),
            "model_name": args.model_name,
            **({"epochs": args.epochs} if args.epochs is not None else {}),
            **split_pairs(args.param),
        }
    except ValueError as error:
        result = RunResult(status="failed", error=str(error))
    else:
        result = run_local(arguments, package=args.package, pipeline_root=args.pipeline_root)
    elapsed = time.monotonic() - started
    if result.ok:
        print(f"[pipeline] run succeeded in {elapsed:.1f} s: {result.reason}")
    else:
        print(f"[pipeline] run FAILED in {elapsed:.1f} s at {result.failed_step}: {result.error}")
    if args.result_file:
        result.write(args.result_file)
    print(json.dumps(result.metrics, sort_keys=True))
    return 0 if result.ok else 1


def _demo_data(args: argparse.Namespace) -> int:
    from pipeline.steps import demo_data

    path = demo_data.write(args.output, rows=args.rows, seed=args.seed)
    print(f"wrote {args.rows} rows to {path}")
    return 0
