"""The training pipeline: how the components are wired, retried, sized and mounted.

    fetch ─┬─ validate ───┬───────────────────────────────────┐
           └─ preprocess ─┴─ train ─┬─ evaluate ──────────────┤
                                    └─ convert ── verify ─────┴─ publish

validate and preprocess run in parallel; train waits for both (no compute on bad data);
evaluate and convert run in parallel; publish needs validate, evaluate and verify.

Parameter names and defaults are a contract with the trigger service.
"""

from typing import NamedTuple

from kfp import dsl, kubernetes

from pipeline import components, config


class PipelineOutputs(NamedTuple):
    """What a run reports back: `model_version` 0 and an empty path when nothing was published."""

    published: bool
    model_version: int
    model_path: str
    reason: str
    metrics_json: str


@dsl.pipeline(
    name="training-pipeline",
    description="Fetch, validate, train (Keras), convert (ONNX), verify and publish a model.",
)
def training_pipeline(
    data_uri: str,
    models_root: str = "/models",
    model_name: str = "songs",
    pvc_name: str = "models",
    epochs: int = 20,
    batch_size: int = 64,
    learning_rate: float = 0.003,
    seed: int = 42,
    test_fraction: float = 0.2,
    accuracy_threshold: float = 0.5,
    parity_tolerance: float = 1e-4,
    champion_tolerance: float = 0.01,
    keep_versions: int = 5,
    git_commit: str = "",
    trigger_reason: str = "",
    event_ids: str = "",
    decision_id: str = "",
) -> PipelineOutputs:
    fetch = components.fetch_data(data_uri=data_uri)
    fetch.set_retry(
        num_retries=config.FETCH_RETRIES, backoff_duration=config.FETCH_BACKOFF, backoff_factor=2
    )
    kubernetes.use_secret_as_env(
        fetch,
        secret_name=config.S3_SECRET_NAME,
        secret_key_to_env={key: key for key in config.S3_SECRET_KEYS},
        optional=True,
    )

    validate = components.validate_data(data=fetch.outputs["data"])
    preprocess = components.preprocess_data(
        data=fetch.outputs["data"], test_fraction=test_fraction, seed=seed
    )
    splits = preprocess.outputs["splits"]

    train = components.train_model(
        splits=splits,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
    )
    # Bad data should stop the run before the expensive step, not after it.
    train.after(validate)
    resources = config.TRAIN_RESOURCES
    train.set_cpu_request(resources["cpu_request"]).set_cpu_limit(resources["cpu_limit"])
    train.set_memory_request(resources["memory_request"])
    train.set_memory_limit(resources["memory_limit"])

    model = train.outputs["model"]
    evaluate = components.evaluate_model(
        splits=splits, model=model, accuracy_threshold=accuracy_threshold
    )
    convert = components.convert_to_onnx(model=model)
    onnx_model = convert.outputs["onnx_model"]
    verify = components.verify_onnx(
        splits=splits, model=model, onnx_model=onnx_model, parity_tolerance=parity_tolerance
    )

    publish = components.publish_model(
        onnx_model=onnx_model,
        splits=splits,
        accuracy=evaluate.outputs["accuracy"],
        macro_f1=evaluate.outputs["macro_f1"],
        parity_max_abs_diff=verify.outputs["Output"],
        data_uri=data_uri,
        data_sha256=fetch.outputs["Output"],
        models_root=models_root,
        model_name=model_name,
        champion_tolerance=champion_tolerance,
        keep_versions=keep_versions,
        git_commit=git_commit,
        trigger_reason=trigger_reason,
        event_ids=event_ids,
        decision_id=decision_id,
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
    )
    publish.after(validate)
    kubernetes.mount_pvc(publish, pvc_name=pvc_name, mount_path=config.MODELS_MOUNT_PATH)

    # A re-run must really train and publish again (and publish has side effects).
    for task in (fetch, validate, preprocess, train, evaluate, convert, verify, publish):
        task.set_caching_options(False)

    return PipelineOutputs(
        publish.outputs["published"],
        publish.outputs["model_version"],
        publish.outputs["model_path"],
        publish.outputs["reason"],
        publish.outputs["metrics_json"],
    )
