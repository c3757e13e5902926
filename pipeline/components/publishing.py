"""The publish component: champion/challenger, then an atomic new version on the models PVC."""

from typing import NamedTuple

from kfp import dsl

from pipeline.config import base_image


@dsl.component(base_image=base_image(), install_kfp_package=False)
def publish_model(
    onnx_model: dsl.Input[dsl.Model],
    splits: dsl.Input[dsl.Dataset],
    accuracy: float,
    macro_f1: float,
    parity_max_abs_diff: float,
    data_uri: str,
    data_sha256: str,
    models_root: str,
    model_name: str,
    champion_tolerance: float,
    keep_versions: int,
    git_commit: str,
    trigger_reason: str,
    event_ids: str,
    decision_id: str,
    run_id: str,
    metrics: dsl.Output[dsl.Metrics],
) -> NamedTuple(  # type: ignore[valid-type]
    "Outputs",
    [
        ("published", bool),
        ("model_version", int),
        ("model_path", str),
        ("reason", str),
        ("metrics_json", str),
    ],
):
    """Publish unless the champion is better; `model_version` is 0 when nothing was published
    and `metrics_json` is the run's metrics as a JSON object."""
    import json
    from pathlib import Path

    from pipeline.steps import convert, publish, runlog

    lineage = publish.Lineage(
        data_uri=data_uri,
        data_sha256=data_sha256,
        git_commit=git_commit,
        trigger_reason=trigger_reason,
        event_ids=publish.parse_event_ids(event_ids),
        decision_id=decision_id,
        run_id=run_id,
    )
    scores = {
        "accuracy": accuracy,
        "macro_f1": macro_f1,
        "parity_max_abs_diff": parity_max_abs_diff,
    }
    with runlog.step("publish"):
        result = publish.publish(
            onnx_path=Path(onnx_model.path) / convert.ONNX_FILE,
            splits_dir=Path(splits.path),
            models_root=Path(models_root),
            model_name=model_name,
            metrics=scores,
            lineage=lineage,
            policy=publish.Policy(champion_tolerance, keep_versions),
        )
        runlog.say(f"[pipeline] publish: {result.reason}")
        if result.removed_versions:
            runlog.say(f"[pipeline] publish: removed old versions {result.removed_versions}")
    summary = {**scores, "published": int(result.published), "model_version": result.version or 0}
    if result.champion_accuracy is not None:
        summary["champion_accuracy"] = result.champion_accuracy
    for name, value in summary.items():
        metrics.log_metric(name, value)
    return (
        result.published,
        result.version or 0,
        result.path or "",
        result.reason,
        json.dumps(summary, sort_keys=True),
    )
