"""Bad values are refused at the edge with 400 naming the field, and nothing is stored or run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import Build
from tests.support.repo import GitRepo
from trigger_service.api import create_app
from trigger_service.service import Services

CASES = Path(__file__).resolve().parents[1] / "fixtures" / "cases"
AUTH = {"Authorization": "Bearer manual-token"}


def typed_rules(repo_url: str) -> str:
    return f"""\
pipelines:
  - name: songs
    source:
      repository: {repo_url}
      package_path: pipeline.yaml
    defaults:
      data_uri: songs.csv
      model_name: songs
      epochs: 10
      learning_rate: 0.01
      shuffle: true
  - name: private
    source:
      repository: {repo_url}
      package_path: pipeline.yaml
triggers:
  - name: by-hand
    on: manual
    pipelines: [songs]
    params:
      trigger_reason: manual
"""


@pytest.fixture
def services(build: Build, repo: GitRepo) -> Services:
    return build(rules=typed_rules(repo.url))


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services, start_worker=False)) as test_client:
        yield test_client


def stored(services: Services) -> int:
    return sum(services.inbox.depth().values())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"pipeline": "songs", "params": {"model_name": "../../escaped-model"}},
            "params.model_name",
        ),
        ({"pipeline": "songs", "params": {"model_name": "a/b"}}, "params.model_name"),
        ({"pipeline": "songs", "params": {"model_name": ".."}}, "params.model_name"),
        ({"pipeline": "songs", "params": {"model_name": "x\u0000y"}}, "params.model_name"),
        ({"pipeline": "songs", "params": {"model_name": ""}}, "params.model_name"),
        ({"pipeline": "songs", "params": {"epochs": "abc"}}, "params.epochs"),
        ({"pipeline": "songs", "params": {"epochs": 2.5}}, "params.epochs"),
        ({"pipeline": "songs", "params": {"epochs": True}}, "params.epochs"),
        ({"pipeline": "songs", "params": {"epochs": 2**64}}, "params.epochs"),
        ({"pipeline": "songs", "params": {"epochs": "\u0661\u0662"}}, "params.epochs"),  # ١٢
        ({"pipeline": "songs", "params": {"epochs": "1_000"}}, "params.epochs"),
        ({"pipeline": "songs", "params": {"learning_rate": "\u0661.5"}}, "params.learning_rate"),
        ({"pipeline": "songs", "params": {"learning_rate": "1_0.5"}}, "params.learning_rate"),
        ({"pipeline": "songs", "params": {"learning_rate": "fast"}}, "params.learning_rate"),
        ({"pipeline": "songs", "params": {"shuffle": "perhaps"}}, "params.shuffle"),
        ({"pipeline": "songs", "params": {"data_uri": 3}}, "params.data_uri"),
        ({"pipeline": "songs", "params": {"epochz": 3}}, "params: unknown parameter 'epochz'"),
        ({"pipeline": "nope"}, "pipeline: unknown pipeline 'nope'"),
        ({"pipeline": "private"}, "pipeline: no manual trigger in the rules allows private"),
        ({"pipeline": "../songs"}, "pipeline: '../songs' is not one path segment"),
    ],
)
def test_a_bad_manual_value_is_400_naming_the_field_and_nothing_is_stored(
    client: TestClient, services: Services, body: dict, field: str
) -> None:
    answer = client.post("/trigger", json=body, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith(field), answer.json()
    assert stored(services) == 0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"pipeline": "songs", "params": {"learning_rate": 1e400}}',
        b'{"pipeline": "songs", "params": {"epochs": -1e400}}',
    ],
)
def test_an_infinite_number_is_refused(client: TestClient, services: Services, raw: bytes) -> None:
    answer = client.post(
        "/trigger", content=raw, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    assert "params." in answer.json()["error"]
    assert stored(services) == 0


def test_the_shared_traversal_case_is_refused(client: TestClient, services: Services) -> None:
    case = CASES / "manual-model-name-traversal.json"
    if not case.is_file():
        pytest.skip(f"{case} is not on this machine")
    body = json.loads(case.read_text())
    body.pop("version")  # a full sha of another repository: the version check is its own issue
    answer = client.post("/trigger", json=body, headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("params.model_name")
    assert stored(services) == 0


def test_values_are_converted_to_the_defaults_types(client: TestClient, services: Services) -> None:
    body = {
        "pipeline": "songs",
        "params": {"epochs": "12", "learning_rate": 1, "shuffle": "false", "trigger_reason": "x"},
    }
    answer = client.post("/trigger", json=body, headers=AUTH)
    assert answer.status_code == 202, answer.text
    (event_id,) = answer.json()["accepted"]
    params = services.inbox.get(event_id)["subject"]["params"]
    assert params == {"epochs": 12, "learning_rate": 1.0, "shuffle": False, "trigger_reason": "x"}
    assert type(params["epochs"]) is int


@pytest.mark.parametrize(
    "path",
    [
        "/events?offset=18446744073709551616",
        "/events?limit=99999999999999999999999",
        "/decisions?offset=99999999999999999999999",
        "/runs?offset=99999999999999999999999",
        "/models/songs/18446744073709551616",
        "/models/songs/-1",
    ],
)
def test_numbers_out_of_range_in_queries_and_paths_are_400(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 400, answer.text
    assert "error" in answer.json()


@pytest.mark.parametrize(
    "body",
    [
        b'{"source": "manual", "body": "\\ud800"}',
        b'{"source": "manual", "payload": {"pipeline": "\\udc00"}}',
        b'{"source": "manual", "headers": {"\\ud800": "x"}, "payload": {"pipeline": "songs"}}',
        b'{"event_id": "\\ud800"}',
    ],
)
def test_explain_refuses_lone_surrogates_with_400(client: TestClient, body: bytes) -> None:
    answer = client.post(
        "/explain", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    assert "Unicode" in answer.json()["error"] or "surrogate" in answer.json()["error"]


def test_explain_refuses_what_the_trigger_route_refuses(client: TestClient) -> None:
    body = {"source": "manual", "payload": {"pipeline": "songs", "params": {"epochs": "abc"}}}
    answer = client.post("/explain", json=body, headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("params.epochs")


def test_the_explain_command_refuses_what_the_route_refuses(tmp_path: Path, repo: GitRepo) -> None:
    import subprocess
    import sys

    rules = tmp_path / "typed-rules.yaml"
    rules.write_text(typed_rules(repo.url))
    done = subprocess.run(
        [sys.executable, "-m", "trigger_service", "explain", "manual", "-", "--rules", str(rules)],
        input=json.dumps({"pipeline": "songs", "params": {"model_name": "../x"}}),
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            "TRIGGER_DATABASE_URL": f"sqlite:///{tmp_path / 'explain.db'}",
        },
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: params.model_name: '../x' is not one path segment")
