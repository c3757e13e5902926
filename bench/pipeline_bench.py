"""Benchmark the training pipeline on demo data and print a table.

    .venv/bin/python bench/pipeline_bench.py [--rows 2000] [--epochs 20]

Measures: wall time of a local end-to-end run (`python -m pipeline run --local`, kfp.local,
one subprocess per step), training and ONNX conversion time (step functions in-process), and
ONNX Runtime vs Keras inference latency at batch 1 and 256 (median of repeated calls).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _median_ms(call: Callable[[], object], repeats: int) -> float:
    for _ in range(5):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _end_to_end(work: Path, data: Path, epochs: int) -> tuple[float, dict]:
    result_file = work / "result.json"
    command = [
        sys.executable, "-m", "pipeline", "run", "--local",
        "--data-uri", str(data), "--models-root", str(work / "models"),
        "--model-name", "songs", "--epochs", str(epochs), "--result-file", str(result_file),
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started, json.loads(result_file.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()

    from pipeline.steps import convert, demo_data, preprocess, train
    from pipeline.steps.schema import ONNX_INPUT
    from pipeline.steps.tables import read_table

    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        work = Path(tmp)
        data = demo_data.write(work / "songs.csv", rows=args.rows)
        wall, result = _end_to_end(work, data, args.epochs)
        rows.append(
            (f"end-to-end local run ({args.rows} rows, {args.epochs} epochs)", f"{wall:.1f} s")
        )
        metrics = result["metrics"]
        rows.append(
            ("test accuracy / macro-F1", f"{metrics['accuracy']:.3f} / {metrics['macro_f1']:.3f}")
        )
        rows.append(("chance (largest class share)", f"{_chance(read_table(data)):.3f}"))

        splits = work / "splits"
        preprocess.preprocess(read_table(data), splits, test_fraction=0.2, seed=42)
        started = time.perf_counter()
        train.train(splits, work / "model", train.TrainConfig(epochs=args.epochs))
        rows.append(("training (step function)", f"{time.perf_counter() - started:.1f} s"))
        started = time.perf_counter()
        onnx_path = convert.convert(work / "model", work / "onnx").onnx_path
        rows.append(("ONNX conversion (step function)", f"{time.perf_counter() - started:.1f} s"))

        import onnxruntime as ort
        import tensorflow as tf

        model = train.load_model(work / "model")
        # Graph mode is Keras at its fastest; the eager call is what `model(x)` costs.
        graph_call = tf.function(lambda t: model(t, training=False), reduce_retracing=True)
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        features = preprocess.load_split(splits, "test").features
        for batch in (1, 256):
            x = np.resize(features, (batch, features.shape[1])).astype(np.float32)
            repeats = 200 if batch == 1 else 50
            keras_ms = _median_ms(partial(model, x, training=False), repeats)
            graph_ms = _median_ms(partial(graph_call, x), repeats)
            onnx_ms = _median_ms(partial(session.run, None, {ONNX_INPUT: x}), repeats)
            rows.append((f"Keras inference (eager call), batch {batch}", f"{keras_ms:.3f} ms"))
            rows.append((f"Keras inference (tf.function), batch {batch}", f"{graph_ms:.3f} ms"))
            rows.append((f"ONNX Runtime inference, batch {batch}", f"{onnx_ms:.3f} ms"))
            speed_up = f"{keras_ms / onnx_ms:.0f}x / {graph_ms / onnx_ms:.1f}x"
            rows.append((f"ONNX Runtime speed-up vs eager / tf.function, batch {batch}", speed_up))

    width = max(len(name) for name, _ in rows)
    print(f"| {'measure':<{width}} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")


def _chance(frame: pd.DataFrame) -> float:
    return float(frame["country"].value_counts(normalize=True).max())


if __name__ == "__main__":
    main()
