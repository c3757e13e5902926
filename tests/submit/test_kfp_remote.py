"""KfpBackend with the real kfp.Client against the KFP API double (tests.support.kfp_double).

Every test asserts what crossed the wire: the requests the double recorded.
"""

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kfp_double import KfpDouble, RecordedRequest, self_signed_cert
from trigger_service.errors import PermanentError, TemporaryError
from trigger_service.settings import Settings
from trigger_service.submit.base import RunRequest, RunState, VersionRef, VersionSpec
from trigger_service.submit.kfp_remote import KfpBackend

TOKEN = "token-one"
UI = "https://kfp.example.org"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real compiled KFP IR YAML: one lightweight component in a one-step pipeline.

    (No `from __future__ import annotations` in this module: kfp reads the annotations.)
    """
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11-slim")
    def echo(message: str) -> str:
        return message

    @dsl.pipeline(name="tiny-pipeline")
    def tiny(message: str = "hello", epochs: int = 1) -> None:
        echo(message=message)

    path = tmp_path_factory.mktemp("compiled") / "tiny.yaml"
    compiler.Compiler().compile(tiny, str(path))
    return path


@pytest.fixture
def kfp_api() -> Iterator[KfpDouble]:
    with KfpDouble() as double:
        yield double


@pytest.fixture
def backend(kfp_api: KfpDouble) -> KfpBackend:
    return KfpBackend(kfp_api.url, token=TOKEN, ui_url=UI)


def spec_for(package: Path, version: str = "3f2c1e0") -> VersionSpec:
    return VersionSpec(
        pipeline="songs-training", version=version, package_path=package, description="ci"
    )


def run_request(ref: VersionRef, name: str = "gitops-7d1f") -> RunRequest:
    return RunRequest(
        run_name=name,
        version=ref,
        params={"data_uri": "s3://songs/2026/11/25.parquet", "epochs": 3, "threshold": 0.8},
        experiment="songs-gitops",
        description="push 3f2c1e0 to main by ada; data songs/2026/11/25.parquet",
    )


def posts(kfp_api: KfpDouble) -> list[RecordedRequest]:
    return [r for r in kfp_api.requests if r.method == "POST"]


# --- ensure_version


def test_ensure_version_uploads_the_pipeline_then_the_version(
    kfp_api: KfpDouble, backend: KfpBackend, package: Path
) -> None:
    ref = backend.ensure_version(spec_for(package))

    (upload,) = kfp_api.requests_to("POST", "/pipelines/upload")
    assert upload.param("name") == "songs-training"
    assert upload.files["uploadfile"].content == package.read_bytes()
    assert upload.files["uploadfile"].filename == "tiny.yaml"
    (upload_version,) = kfp_api.requests_to("POST", "/pipelines/upload_version")
    assert upload_version.param("pipelineid") == ref.pipeline_id
    assert upload_version.param("name") == "3f2c1e0"
    assert upload_version.param("description") == "ci"
    assert upload_version.files["uploadfile"].content == package.read_bytes()

    assert kfp_api.pipelines[ref.pipeline_id]["display_name"] == "songs-training"
    assert kfp_api.versions[ref.version_id]["name"] == "3f2c1e0"
    assert kfp_api.versions[ref.version_id]["pipeline_id"] == ref.pipeline_id
    assert (ref.pipeline, ref.version, ref.package_path) == ("songs-training", "3f2c1e0", package)
    # upload_pipeline also made a first version named after the pipeline: two in all
    names = sorted(v["name"] for v in kfp_api.versions.values())
    assert names == ["3f2c1e0", "songs-training"]
    assert {r.authorization for r in kfp_api.requests} == {f"Bearer {TOKEN}"}


def test_ensure_version_twice_uploads_nothing_the_second_time(
    kfp_api: KfpDouble, backend: KfpBackend, package: Path
) -> None:
    first = backend.ensure_version(spec_for(package))
    before = len(posts(kfp_api))

    second = backend.ensure_version(spec_for(package))

    assert second == first
    assert len(posts(kfp_api)) == before
    # the lookups filtered on the names, as filter.proto JSON
    lookup = kfp_api.requests_to("GET", f"/pipelines/{first.pipeline_id}/versions")[-1]
    predicate = json.loads(lookup.param("filter") or "{}")["predicates"][0]
    assert predicate == {"key": "display_name", "operation": "EQUALS", "string_value": "3f2c1e0"}


def test_a_new_commit_adds_a_version_to_the_existing_pipeline(
    kfp_api: KfpDouble, backend: KfpBackend, package: Path
) -> None:
    first = backend.ensure_version(spec_for(package, "aaaa111"))
    second = backend.ensure_version(spec_for(package, "bbbb222"))

    assert second.pipeline_id == first.pipeline_id
    assert second.version_id != first.version_id
    assert len(kfp_api.requests_to("POST", "/pipelines/upload")) == 1
    uploads = kfp_api.requests_to("POST", "/pipelines/upload_version")
    assert [r.param("name") for r in uploads] == ["aaaa111", "bbbb222"]


def test_a_version_uploaded_concurrently_is_found_after_the_409(
    kfp_api: KfpDouble, backend: KfpBackend, package: Path
) -> None:
    backend.ensure_version(spec_for(package, "aaaa111"))
    # Another worker uploads the same version between our lookup and our upload.
    kfp_api.before_next(
        "POST", "/pipelines/upload_version", lambda r: kfp_api.handle(dataclasses.replace(r))
    )

    ref = backend.ensure_version(spec_for(package, "bbbb222"))

    statuses = [r.status for r in kfp_api.requests_to("POST", "/pipelines/upload_version")]
    assert statuses == [200, 200, 409]  # aaaa111, the other worker's bbbb222, ours
    (winner,) = [v for v in kfp_api.versions.values() if v["name"] == "bbbb222"]
    assert ref.version_id == winner["pipeline_version_id"]


def test_a_pipeline_created_concurrently_is_found_after_the_409(
    kfp_api: KfpDouble, backend: KfpBackend, package: Path
) -> None:
    kfp_api.before_next(
        "POST", "/pipelines/upload", lambda r: kfp_api.handle(dataclasses.replace(r))
    )

    ref = backend.ensure_version(spec_for(package))

    assert [r.status for r in kfp_api.requests_to("POST", "/pipelines/upload")] == [200, 409]
    (pipeline,) = kfp_api.pipelines.values()
    assert ref.pipeline_id == pipeline["pipeline_id"]
    assert kfp_api.versions[ref.version_id]["name"] == "3f2c1e0"


def test_an_experiment_created_concurrently_is_found_after_the_409(
    kfp_api: KfpDouble, backend: KfpBackend, package: Path
) -> None:
    ref = backend.ensure_version(spec_for(package))
    # Another worker creates the experiment between our lookup and our create.
    kfp_api.before_next("POST", "/experiments", lambda r: kfp_api.handle(dataclasses.replace(r)))

    run_id = backend.submit(run_request(ref))

    assert [r.status for r in kfp_api.requests_to("POST", "/experiments")] == [200, 409]
    (experiment,) = kfp_api.experiments.values()
    assert kfp_api.runs[run_id]["experiment_id"] == experiment["experiment_id"]


# --- submit and find_run


def test_submit_creates_the_experiment_and_a_run_of_that_version(
    kfp_api: KfpDouble, backend: KfpBackend, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = backend.ensure_version(spec_for(package))

    run_id = backend.submit(run_request(ref))

    (create_experiment,) = kfp_api.requests_to("POST", "/experiments")
    assert create_experiment.json == {"display_name": "songs-gitops"}
    (experiment,) = kfp_api.experiments.values()
    (create_run,) = kfp_api.requests_to("POST", "/runs")
    assert create_run.headers["content-type"] == "application/json"
    assert create_run.json == {
        "experiment_id": experiment["experiment_id"],
        "display_name": "gitops-7d1f",
        "description": "push 3f2c1e0 to main by ada; data songs/2026/11/25.parquet",
        "pipeline_version_reference": {
            "pipeline_id": ref.pipeline_id,
            "pipeline_version_id": ref.version_id,
        },
        "runtime_config": {
            "parameters": {
                "data_uri": "s3://songs/2026/11/25.parquet",
                "epochs": 3,
                "threshold": 0.8,
            }
        },
    }
    assert kfp_api.runs[run_id]["display_name"] == "gitops-7d1f"
    # kfp.Client's convenience methods print links; the backend keeps stdout clean
    assert capsys.readouterr().out == ""


def test_submit_is_idempotent_on_the_run_name(
    kfp_api: KfpDouble, backend: KfpBackend, package: Path
) -> None:
    ref = backend.ensure_version(spec_for(package))
    first = backend.submit(run_request(ref))

    again = backend.submit(run_request(ref))

    assert again == first
    assert len(kfp_api.requests_to("POST", "/runs")) == 1


def test_a_second_run_reuses_the_experiment(
    kfp_api: KfpDouble, backend: KfpBackend, package: Path
) -> None:
    ref = backend.ensure_version(spec_for(package))
    one = backend.submit(run_request(ref, "gitops-one"))
    two = backend.submit(run_request(ref, "gitops-two"))

    assert one != two
    assert len(kfp_api.requests_to("POST", "/experiments")) == 1
    assert kfp_api.runs[one]["experiment_id"] == kfp_api.runs[two]["experiment_id"]


def test_find_run_by_name(kfp_api: KfpDouble, backend: KfpBackend, package: Path) -> None:
    ref = backend.ensure_version(spec_for(package))
    one = backend.submit(run_request(ref, "gitops-one"))
    two = backend.submit(run_request(ref, "gitops-two"))

    assert backend.find_run("gitops-two") == two
    assert backend.find_run("gitops-one") == one
    assert backend.find_run("gitops-three") is None
    lookup = kfp_api.requests_to("GET", "/runs")[-1]
    assert json.loads(lookup.param("filter") or "") == {
        "predicates": [
            {"key": "display_name", "operation": "EQUALS", "string_value": "gitops-three"}
        ]
    }


def test_multi_user_calls_carry_the_namespace(package: Path) -> None:
    with KfpDouble(multi_user=True) as kfp_api:
        backend = KfpBackend(kfp_api.url, token=TOKEN, namespace="team-songs")
        ref = backend.ensure_version(spec_for(package))
        run_id = backend.submit(run_request(ref))

        assert backend.find_run("gitops-7d1f") == run_id
        (create_experiment,) = kfp_api.requests_to("POST", "/experiments")
        assert create_experiment.json == {
            "display_name": "songs-gitops",
            "namespace": "team-songs",
        }
        for path in ("/experiments", "/runs", "/pipelines"):
            assert {r.param("namespace") for r in kfp_api.requests_to("GET", path)} == {
                "team-songs"
            }
        assert kfp_api.requests_to("POST", "/pipelines/upload")[0].param("namespace") == (
            "team-songs"
        )


# --- auth


def test_the_token_file_is_read_again_for_every_request(kfp_api: KfpDouble, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("token-one\n")
    kfp_api.require_token("token-one", "token-two")
    backend = KfpBackend(kfp_api.url, token_path=token_file)

    assert backend.find_run("gitops-a") is None
    token_file.write_text("token-two\n")  # the kubelet rotated the projected token
    assert backend.find_run("gitops-b") is None

    assert [r.authorization for r in kfp_api.requests] == ["Bearer token-one", "Bearer token-two"]


def test_a_rejected_token_is_permanent(kfp_api: KfpDouble, tmp_path: Path) -> None:
    kfp_api.require_token("the-right-one")
    backend = KfpBackend(kfp_api.url, token="a-wrong-one")

    with pytest.raises(PermanentError, match="HTTP 401: Unauthenticated"):
        backend.find_run("gitops-a")


def test_a_missing_token_file_is_permanent(kfp_api: KfpDouble, tmp_path: Path) -> None:
    backend = KfpBackend(kfp_api.url, token_path=tmp_path / "absent")

    with pytest.raises(PermanentError, match="token") as caught:
        backend.find_run("gitops-a")

    assert isinstance(caught.value.__cause__, FileNotFoundError)
    assert kfp_api.requests == []


def test_the_client_does_not_probe_healthz_on_construction(
    kfp_api: KfpDouble, backend: KfpBackend
) -> None:
    backend.find_run("gitops-a")

    assert [r.path for r in kfp_api.requests] == ["/apis/v2beta1/runs"]


def test_from_settings(kfp_api: KfpDouble, tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "kfp_host": kfp_api.url + "/",
            "kfp_token": "explicit",
            "kfp_token_path": tmp_path / "ignored-when-a-token-is-given",
            "kfp_ui_url": "https://kfp.example.org/",
        }
    )

    backend = KfpBackend.from_settings(settings)
    backend.find_run("gitops-a")

    assert backend.name == "kfp"
    assert backend.ui_url == "https://kfp.example.org"
    assert [r.authorization for r in kfp_api.requests] == ["Bearer explicit"]


# --- status and cancel


@pytest.mark.parametrize(
    ("kfp_state", "expected"),
    [
        ("PENDING", RunState.PENDING),
        ("RUNNING", RunState.RUNNING),
        ("SUCCEEDED", RunState.SUCCEEDED),
        ("SKIPPED", RunState.SUCCEEDED),
        ("CANCELING", RunState.RUNNING),
        ("CANCELED", RunState.CANCELED),
        ("PAUSED", RunState.RUNNING),
    ],
)
def test_status_maps_kfp_states(
    kfp_api: KfpDouble, backend: KfpBackend, package: Path, kfp_state: str, expected: RunState
) -> None:
    run_id = backend.submit(run_request(backend.ensure_version(spec_for(package))))
    if kfp_state != "PENDING":
        kfp_api.advance_run(run_id, kfp_state)

    status = backend.status(run_id)

    assert status.state is expected
    assert status.external_id == run_id
    assert status.url == f"{UI}/#/runs/details/{run_id}"
    assert (status.error, status.failed_step) == (None, None)
    assert kfp_api.requests_to("GET", f"/runs/{run_id}")


def test_a_failed_run_names_the_failed_step(
    kfp_api: KfpDouble, backend: KfpBackend, package: Path
) -> None:
    run_id = backend.submit(run_request(backend.ensure_version(spec_for(package))))
    kfp_api.advance_run(run_id, "RUNNING")
    kfp_api.advance_run(run_id, "FAILED", failed_task="train-model", error="train-model failed")

    status = backend.status(run_id)

    assert status.state is RunState.FAILED
    assert status.failed_step == "train-model"  # not the root DAG, which failed too
    assert status.error == "train-model failed"


def test_a_failed_run_without_a_run_error_reports_the_task_error(
    kfp_api: KfpDouble, backend: KfpBackend, package: Path
) -> None:
    run_id = backend.submit(run_request(backend.ensure_version(spec_for(package))))
    kfp_api.advance_run(run_id, "FAILED", failed_task="validate-data")

    status = backend.status(run_id)

    assert (status.failed_step, status.error) == ("validate-data", "validate-data: exit code 1")


def test_cancel_terminates_the_run(kfp_api: KfpDouble, backend: KfpBackend, package: Path) -> None:
    run_id = backend.submit(run_request(backend.ensure_version(spec_for(package))))
    kfp_api.advance_run(run_id, "RUNNING")

    backend.cancel(run_id)

    (terminate,) = kfp_api.requests_to("POST", f"/runs/{run_id}:terminate")
    assert terminate.authorization == f"Bearer {TOKEN}"
    assert backend.status(run_id).state is RunState.RUNNING  # CANCELING: not finished yet
    kfp_api.advance_run(run_id, "CANCELED")
    assert backend.status(run_id).state is RunState.CANCELED


def test_status_of_an_unknown_run_is_permanent(backend: KfpBackend) -> None:
    with pytest.raises(PermanentError, match="HTTP 404: Run nope not found"):
        backend.status("nope")


# --- errors


def test_503_is_temporary(kfp_api: KfpDouble, backend: KfpBackend, package: Path) -> None:
    kfp_api.fail_next(1, status=503, message="upstream connect error")

    with pytest.raises(TemporaryError, match="HTTP 503: upstream connect error") as caught:
        backend.ensure_version(spec_for(package))

    assert getattr(caught.value.__cause__, "status", None) == 503
    assert backend.ensure_version(spec_for(package)).version_id  # the retry goes through


def test_connection_refused_is_temporary(
    kfp_api: KfpDouble, backend: KfpBackend, package: Path
) -> None:
    ref = backend.ensure_version(spec_for(package))
    kfp_api.refuse_connections()

    with pytest.raises(TemporaryError, match="unreachable") as caught:
        backend.submit(run_request(ref))

    assert caught.value.__cause__ is not None
    kfp_api.accept_connections()
    assert backend.submit(run_request(ref)) in kfp_api.runs


def test_a_timeout_is_temporary(kfp_api: KfpDouble, package: Path) -> None:
    backend = KfpBackend(kfp_api.url, token=TOKEN, request_timeout=(1.0, 0.2))
    run_id = backend.submit(run_request(backend.ensure_version(spec_for(package))))
    kfp_api.delay_next(1.0)

    with pytest.raises(TemporaryError, match="unreachable"):
        backend.cancel(run_id)  # a POST: urllib3 does not retry it


def test_403_is_permanent_and_carries_kfp_message(
    kfp_api: KfpDouble, backend: KfpBackend, package: Path
) -> None:
    ref = backend.ensure_version(spec_for(package))
    message = "User 'system:serviceaccount:ml:trigger' is not allowed to create runs"
    kfp_api.deny(message)

    with pytest.raises(PermanentError) as caught:
        backend.submit(run_request(ref))

    assert str(caught.value) == f"KFP list runs: HTTP 403: {message}"
    assert getattr(caught.value.__cause__, "status", None) == 403
    assert kfp_api.requests_to("POST", "/runs") == []


# --- TLS


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


def test_tls_with_the_ca_bundle(tls: tuple[Path, Path]) -> None:
    with KfpDouble(tls=tls) as kfp_api:
        backend = KfpBackend(kfp_api.url, token=TOKEN, ca_file=tls[0])

        assert backend.find_run("gitops-a") is None
        assert kfp_api.requests[0].authorization == f"Bearer {TOKEN}"


def test_tls_with_an_unknown_ca_is_permanent(tls: tuple[Path, Path]) -> None:
    with KfpDouble(tls=tls) as kfp_api:
        backend = KfpBackend(kfp_api.url, token=TOKEN)

        with pytest.raises(PermanentError, match="TLS verification"):
            backend.find_run("gitops-a")
        assert kfp_api.requests == []


def test_tls_verification_can_be_turned_off(tls: tuple[Path, Path]) -> None:
    with KfpDouble(tls=tls) as kfp_api:
        backend = KfpBackend(kfp_api.url, token=TOKEN, verify_tls=False)

        with pytest.warns(Warning, match="Unverified HTTPS request"):
            assert backend.find_run("gitops-a") is None
        assert len(kfp_api.requests) == 1
