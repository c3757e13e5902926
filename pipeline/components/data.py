"""Data components: fetch, validate, preprocess."""

from kfp import dsl

from pipeline.config import base_image


@dsl.component(base_image=base_image(), install_kfp_package=False)
def fetch_data(data_uri: str, data: dsl.Output[dsl.Dataset]) -> str:
    """Copy the data at `data_uri` into the `data` artifact; return its sha256."""
    import os
    from pathlib import Path

    from pipeline.steps import fetch, runlog

    with runlog.step("fetch"):
        result = fetch.fetch(data_uri, Path(data.path), os.environ)
    data.metadata.update({"uri": data_uri, "sha256": result.sha256, "bytes": result.size})
    return result.sha256


@dsl.component(base_image=base_image(), install_kfp_package=False)
def validate_data(data: dsl.Input[dsl.Dataset], report: dsl.Output[dsl.Artifact]) -> None:
    """Write the validation report; fail the task (and so the run) when the data is bad."""
    from pathlib import Path

    from pipeline.steps import runlog, validate

    with runlog.step("validate"):
        validate.validate_file(Path(data.path), Path(report.path))


@dsl.component(base_image=base_image(), install_kfp_package=False)
def preprocess_data(
    data: dsl.Input[dsl.Dataset], test_fraction: float, seed: int, splits: dsl.Output[dsl.Dataset]
) -> None:
    """Numeric features and a seeded, stratified train/test split (a directory artifact)."""
    from pathlib import Path

    from pipeline.steps import preprocess, runlog
    from pipeline.steps.tables import read_table

    with runlog.step("preprocess"):
        schema = preprocess.preprocess(
            read_table(data.path), Path(splits.path), test_fraction, seed
        )
    splits.metadata.update(schema["rows"])
