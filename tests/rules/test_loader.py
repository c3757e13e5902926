"""Loading the rules file: mistakes are refused with FILE:LINE: field: message."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from tests.rules.builders import alert, manual, push, upload
from trigger_service.rules import (
    CodeTrigger,
    DataTrigger,
    NoRun,
    RulesError,
    VersionRequest,
    check_rules,
    decide,
    load_rules,
    parse_rules,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rules.yaml"

HEAD = """\
pipelines:
  - name: songs
    source: {repository: "file:///srv/songs.git", package_path: pipeline.yaml}
triggers:
"""  # triggers start at line 5


def problems(text: str) -> list[str]:
    with pytest.raises(RulesError) as error:
        parse_rules(dedent(text))
    assert str(error.value).startswith("invalid rules (")
    return error.value.problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            HEAD + "  - {name: a, on: code, pipeline: songs}\n  - {name: b, on: cron}\n",
            "rules.yaml:6: triggers[1].on: must be one of code, data, drift, manual (got cron)",
        ),
        (
            HEAD + "  - name: a\n    pipeline: songs\n",
            "rules.yaml:5: triggers[0].on: required field is missing",
        ),
        (
            HEAD + "  - name: a\n    on: code\n    pipeline: songs\n    branch: [main]\n",
            "rules.yaml:8: triggers[0].branch: unknown field (did you mean branches?)",
        ),
        (
            HEAD + "  - name: a\n    on: code\n    pipeline: nope\n",
            "rules.yaml:7: triggers[0].pipeline: unknown pipeline 'nope' (pipelines: songs)",
        ),
        (
            HEAD + "  - {name: a, on: code, pipeline: songs}\n"
            "  - {name: a, on: data, pipeline: songs}\n",
            "rules.yaml:6: triggers[1].name: duplicate name 'a' (as triggers[0])",
        ),
        (
            HEAD + "  - name: d\n    on: drift\n    pipeline: songs\n    labels:\n"
            "      model: songs\n      severity: '=~(warning'\n",
            "rules.yaml:10: triggers[0].labels.severity: bad regular expression: missing )",
        ),
        (
            HEAD + "  - name: d\n    on: data\n    pipeline: songs\n    params:\n"
            "      data_uri: '{subject.url}'\n",
            "rules.yaml:9: triggers[0].params.data_uri: unknown placeholder {subject.url} for a "
            "data event",
        ),
        (
            HEAD + "  - name: c\n    on: code\n    pipeline: songs\n    params:\n"
            "      x: '{subject.labels[model]}'\n",
            "rules.yaml:9: triggers[0].params.x: unknown placeholder {subject.labels[model]}",
        ),
        (
            HEAD + "  - {name: m, on: manual, pipelines: [songs, ghost]}\n",
            "rules.yaml:5: triggers[0].pipelines[1]: unknown pipeline 'ghost'",
        ),
        (
            HEAD + "  - name: c\n    on: code\n    pipeline: songs\n    policy:\n"
            "      batch_by: alert\n",
            "rules.yaml:9: triggers[0].policy.batch_by: batch_by alert applies to drift triggers",
        ),
        (
            HEAD + "  - name: c\n    on: code\n    pipeline: songs\n    policy:\n"
            "      debounce_seconds: -1\n",
            "rules.yaml:9: triggers[0].policy.debounce_seconds: must be greater than or equal to 0",
        ),
        (
            HEAD + "  - name: c\n    on: code\n    pipeline: songs\n    policy:\n"
            "      concurrency: queue\n",
            "rules.yaml:9: triggers[0].policy.concurrency: must be one of queue-one, skip, parallel"
            " (got queue)",
        ),
        (
            HEAD + "  - {name: c, on: code, pipeline: songs, paths: []}\n",
            "rules.yaml:5: triggers[0].paths: must not be empty",
        ),
        (
            HEAD + "  - {name: d, on: drift, pipeline: songs, status: [firing, pending]}\n",
            "rules.yaml:5: triggers[0].status[1]: must be one of firing, resolved (got pending)",
        ),
        (
            HEAD + "  - {name: 'bad name', on: manual}\n",
            "rules.yaml:5: triggers[0].name: must be 1-63 letters, digits",
        ),
        (
            """\
            pipelines:
              - name: songs
                source:
                  repository: file:///srv/songs.git
                  package_path: pipeline.yaml
                  module: pipeline
            """,
            "rules.yaml:3: pipelines[0].source: set exactly one of package_path (a compiled YAML)"
            " or module",
        ),
        (
            """\
            pipelines:
              - name: songs
                source: {repository: /srv/songs}
            """,
            "rules.yaml:3: pipelines[0].source: set exactly one of package_path",
        ),
        (
            """\
            pipelines:
              - name: songs
                source: {repository: /srv/songs, module: pipeline}
            """,
            "rules.yaml:3: pipelines[0].source: module needs image_template",
        ),
        (
            """\
            pipelines:
              - name: songs
                source: {repository: /srv/songs, module: pipeline,
                         image_template: "r/p:{sha}"}
            """,
            "rules.yaml:4: pipelines[0].source.image_template: unknown placeholder {sha}",
        ),
        (
            """\
            pipelines:
              - name: songs
                source:
                  repository: http://git.example/songs.git
                  package_path: ../outside.yaml
            """,
            "rules.yaml:4: pipelines[0].source.repository: must be an https:// or file:// URL",
        ),
        (
            """\
            pipelines:
              - name: songs
                source:
                  repository: http://git.example/songs.git
                  package_path: ../outside.yaml
            """,
            "rules.yaml:5: pipelines[0].source.package_path: must be a relative path inside",
        ),
        (
            """\
            pipelines:
              - name: songs
                source: {repository: /srv/songs, package_path: p.yaml}
                defaults:
                  epochs: [1, 2]
                  bad-name: 1
            """,
            "rules.yaml:5: pipelines[0].defaults.epochs: must be a string, number or boolean",
        ),
        (
            """\
            pipelines:
              - name: songs
                source: {repository: /srv/songs, package_path: p.yaml}
                defaults:
                  bad-name: 1
            """,
            "rules.yaml:5: pipelines[0].defaults.bad-name: parameter name 'bad-name' must be a "
            "Python identifier",
        ),
        (
            """\
            pipelines:
              - name: songs
                source: {repository: /srv/songs, package_path: p.yaml}
                source: {repository: /srv/other, package_path: p.yaml}
            """,
            "rules.yaml:4: pipelines[0].source: duplicate key (first at line 3)",
        ),
        (
            """\
            pipelines:
              - name: songs
                source: {repository: /srv/songs, package_path: p.yaml
            triggers: []
            """,
            "rules.yaml:4: YAML syntax:",
        ),
        ("pipelines: []\n", "rules.yaml:1: pipelines: must not be empty"),
        ("triggers: []\n", "rules.yaml:1: pipelines: required field is missing"),
        ("", "rules.yaml:1: the rules file is empty"),
        ("- a\n", "rules.yaml:1: the rules file is a list, not a mapping"),
        ("pipelines: songs\n", "rules.yaml:1: pipelines: must be a list (got songs)"),
    ],
)
def test_refused_with_file_line_and_field(text: str, expected: str) -> None:
    found = problems(text)
    assert any(p.startswith(expected) for p in found), "\n".join(found)


def test_every_problem_is_reported_in_line_order() -> None:
    text = HEAD.replace("package_path: pipeline.yaml", "package_path: /abs.yaml") + (
        "  - {name: a, on: cron}\n  - {name: b, on: code, pipeline: songs, branchs: [x]}\n"
    )
    found = problems(text)
    assert [p.split(":")[1] for p in found] == ["3", "5", "6"]


def test_on_is_a_key_not_a_boolean() -> None:
    # YAML 1.1 (PyYAML's default) reads `on`, `yes`, `no` as booleans.
    rules = parse_rules(
        HEAD + "  - name: a\n    on: code\n    pipeline: songs\n    branches: [on, yes, no]\n"
    )
    assert rules.triggers[0].on == "code"
    trigger = rules.triggers[0]
    assert isinstance(trigger, CodeTrigger) and trigger.branches == ("on", "yes", "no")


def test_defaults_filled_in() -> None:
    rules = parse_rules(HEAD + "  - {name: a, on: data, pipeline: songs}\n")
    pipeline = rules.pipelines[0]
    assert (pipeline.kfp_pipeline, pipeline.experiment, pipeline.source.branch) == (
        "songs",
        "songs",
        "main",
    )
    trigger = rules.triggers[0]
    assert isinstance(trigger, DataTrigger) and trigger.events == ("s3:ObjectCreated:*",)


def test_filename_is_the_path_given(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(HEAD + "  - {name: a, on: code, pipeline: nope}\n")
    found = check_rules(path)
    assert found == [f"{path}:5: triggers[0].pipeline: unknown pipeline 'nope' (pipelines: songs)"]
    with pytest.raises(RulesError):
        load_rules(path)


def test_unreadable_file(tmp_path: Path) -> None:
    found = check_rules(tmp_path / "missing.yaml")
    assert len(found) == 1 and "cannot read" in found[0]


def test_relative_local_repository_is_relative_to_the_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "repo" / "rules.yaml"
    path.parent.mkdir()
    path.write_text("pipelines:\n  - {name: s, source: {repository: ., package_path: p.yaml}}\n")
    assert load_rules(path).pipelines[0].source.repository == str(path.parent.resolve())


def test_the_example_loads_and_decides() -> None:
    assert check_rules(EXAMPLE) == []
    rules = load_rules(EXAMPLE)
    assert [t.name for t in rules.triggers] == ["code-main", "new-data", "model-drift", "manual"]
    songs = rules.pipelines[0]
    assert songs.source.module == "pipeline" and songs.source.repository.startswith("file://")

    code = decide(push("main", ("pipeline/steps/train.py",)), rules)
    assert isinstance(code, list) and code[0].version_request.kind == "head"
    assert code[0].policy.debounce_seconds == 30 and code[0].policy.cooldown_seconds == 60
    assert isinstance(decide(push("main", ("README.md",)), rules), NoRun)

    data = decide(upload("songs/2026-11.csv"), rules)
    assert isinstance(data, list)
    assert data[0].params["data_uri"] == "s3://datasets/songs/2026-11.csv"
    assert data[0].version_request == VersionRequest("current", branch="main")

    drift = decide(alert(severity="critical"), rules)
    assert isinstance(drift, list) and drift[0].params["trigger_reason"] == "drift songs firing"
    assert decide(alert(env="dev"), rules) == NoRun(
        "no trigger matched: label env is 'dev', wanted !=dev"
    )

    run = decide(manual(reason="fix"), rules)
    assert isinstance(run, list) and run[0].params["trigger_reason"] == "manual: fix"
    assert run[0].policy.concurrency == "parallel"


def test_yaml_anchors_and_merge_keys_work() -> None:
    text = HEAD + "  - &base {name: a, on: code, pipeline: songs}\n  - {<<: *base, name: b}\n"
    assert [t.name for t in parse_rules(text).triggers] == ["a", "b"]


def test_booleans_are_not_numbers() -> None:
    text = HEAD + "  - {name: a, on: code, pipeline: songs, policy: {max_runs_per_hour: true}}\n"
    assert problems(text) == [
        "rules.yaml:5: triggers[0].policy.max_runs_per_hour: must be a valid integer (got true)"
    ]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            "reconcile_seconds: -1",
            "rules.yaml:8: triggers[0].reconcile_seconds: must be 0 (off) or",
        ),
        (
            "reconcile_seconds: 0.5",
            "rules.yaml:8: triggers[0].reconcile_seconds: must be 0 (off) or",
        ),
        (
            "reconcile_seconds: .inf",
            "rules.yaml:8: triggers[0].reconcile_seconds: must be 0 (off) or",
        ),
        (
            "reconcile_seconds: 1.0e+30",
            "rules.yaml:8: triggers[0].reconcile_seconds: must be 0 (off) or",
        ),
        ("reconcile_seconds: true", "rules.yaml:8: triggers[0].reconcile_seconds: must be a valid"),
        ("reconcile_seconds: '60'", "rules.yaml:8: triggers[0].reconcile_seconds: must be a valid"),
        (
            "reconcile_baseline: all",
            "rules.yaml:8: triggers[0].reconcile_baseline: must be one of skip, run (got all)",
        ),
        ("reconcile_second: 60", "rules.yaml:8: triggers[0].reconcile_second: unknown field (did"),
    ],
)
def test_reconcile_fields_are_checked_with_their_line(fields: str, expected: str) -> None:
    text = HEAD + f"  - name: a\n    on: data\n    pipeline: songs\n    {fields}\n"
    found = problems(text)
    assert any(p.startswith(expected) for p in found), "\n".join(found)


def test_reconcile_defaults_and_a_bucketless_trigger() -> None:
    rules = parse_rules(HEAD + "  - {name: a, on: data, pipeline: songs}\n")
    trigger = rules.triggers[0]
    assert isinstance(trigger, DataTrigger)
    assert (trigger.reconcile_seconds, trigger.reconcile_baseline) == (600.0, "skip")
    # Asking to list "any bucket" cannot work: refused where it is written.
    found = problems(
        HEAD + "  - name: a\n    on: data\n    pipeline: songs\n    reconcile_seconds: 60\n"
    )
    assert found == [
        "rules.yaml:8: triggers[0].reconcile_seconds: reconcile needs a bucket to list: set "
        "bucket, or reconcile_seconds: 0"
    ]
    off = parse_rules(HEAD + "  - {name: a, on: data, pipeline: songs, reconcile_seconds: 0}\n")
    assert off.triggers[0].reconcile_seconds == 0  # type: ignore[union-attr]


def alias_bomb(levels: int) -> str:
    """Nested aliases, 10 per level: 10**levels scalars from a few hundred bytes."""
    lines = ["x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for level in range(1, levels + 1):
        lines.append(f"x{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    return "\n".join([*lines, "pipelines: []", ""])


@pytest.mark.parametrize("levels", [5, 9])
def test_nested_aliases_are_refused_quickly_naming_the_line(levels: int) -> None:
    import time

    started = time.monotonic()
    (problem,) = problems(alias_bomb(levels))
    assert time.monotonic() - started < 2.0
    # 10**4 nodes is reached on the line of the 4th level, whatever the depth of the file.
    assert problem.startswith("rules.yaml:4: YAML aliases expand to more than 10000 nodes")


def test_aliases_within_the_limit_still_load() -> None:
    found = problems(alias_bomb(2))  # 100 scalars: the aliases are fine, the rules are not
    assert found and not any("alias" in problem for problem in found)


def test_a_recursive_alias_does_not_hang() -> None:
    assert problems("a: &a [*a]\npipelines: []\n")


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    from trigger_service.rules.loader import MAX_RULES_BYTES

    path = tmp_path / "rules.yaml"
    path.write_text("# padding\n" * (MAX_RULES_BYTES // 10 + 1))
    assert check_rules(path) == [f"{path}:1: the file is {path.stat().st_size} bytes, over 1048576"]


@pytest.mark.parametrize(
    ("bucket", "expected"),
    [
        ("s3://datasets", "a URL or path, not a bucket name: give the bucket alone, the folder"),
        ("datasets/songs", "a URL or path, not a bucket name: give the bucket alone, the folder"),
        ("'data sets'", "not a bucket name (3-255 letters"),
        ("x", "not a bucket name (3-255 letters"),
    ],
)
def test_a_bucket_that_no_notification_or_listing_can_name_is_refused_with_its_line(
    bucket: str, expected: str
) -> None:
    # It matched no notification and failed every listing with a retry, for ever, in silence.
    text = HEAD + f"  - name: a\n    on: data\n    pipeline: songs\n    bucket: {bucket}\n"
    [found] = problems(text)
    assert found.startswith(f"rules.yaml:8: triggers[0].bucket: {expected}"), found


def test_bucket_names_s3_and_minio_accept_load() -> None:
    for name in ("datasets", "ml-training-data", "logs.2026", "Legacy_Bucket"):
        rules = parse_rules(HEAD + f"  - {{name: a, on: data, pipeline: songs, bucket: {name}}}\n")
        assert rules.triggers[0].bucket == name  # type: ignore[union-attr]
