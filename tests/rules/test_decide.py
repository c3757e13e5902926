"""decide(): decision tables per trigger kind, then the details of what a Match carries."""

from __future__ import annotations

import pytest

from tests.rules.builders import RULES, SHA, alert, manual, push, rules, upload
from trigger_service.events import Event
from trigger_service.rules import Match, NoRun, Policy, VersionRequest, decide

RULES_OBJ = rules()


def outcome(event: Event) -> list[str] | str:
    """Trigger names that run, or the NoRun reason."""
    decision = decide(event, RULES_OBJ)
    if isinstance(decision, NoRun):
        return decision.reason
    return [m.trigger for m in decision]


def check(event: Event, expected: list[str] | str) -> None:
    got = outcome(event)
    if isinstance(expected, list):
        assert got == expected
    else:
        assert isinstance(got, str), f"expected NoRun, got matches {got}"
        assert expected in got


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (push("main", ("pipeline/definition.py",)), ["code-main"]),
        (push("main", ("pipeline/steps/train/model.py",)), ["code-main"]),
        (push("release/1.2", ("train.py",)), ["code-main"]),
        (push("prod", ("anything.md",)), ["code-pinned"]),  # default branches: source's branch
        (push("main", None), ["code-main"]),  # changed files unknown: cannot prove irrelevant
        (push("release/1/2"), "branch release/1/2 not in [main, release/*]"),
        (push("feature/x"), "code-main: branch feature/x not in [main, release/*]"),
        (push("feature/x"), "code-pinned: branch feature/x not in [prod]"),
        (
            push("main", ("docs/a.md", "README.md", "src/train.py")),
            "no path matched [pipeline/**, train.py] in 3 changed files",
        ),
        (push("main", ("pipeline",)), "no path matched"),  # pipeline/** is inside, not itself
        (push("main", ()), "in 0 changed files"),
        (push(repository_name="other/repo", repository="https://x/o.git"), "is not team/songs"),
        (push(None, tag="v1.2", ref="refs/tags/v1.2"), "tag push v1.2 (tags do not run"),
        (push(deleted=True, after="0" * 40), "branch deleted"),
        (push(after="0" * 40), "branch deleted"),
        (push(None, ref="refs/notes/x"), "not a branch"),
    ],
)
def test_code_triggers(event: Event, expected: list[str] | str) -> None:
    check(event, expected)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (upload("songs/2026-11.csv"), ["new-data"]),
        (upload("songs/a/b.csv", name="s3:ObjectCreated:CompleteMultipartUpload"), ["new-data"]),
        (upload(name="s3:ObjectRemoved:Delete"), "no trigger matched: object removed"),
        (upload(name="s3:ObjectAccessed:Get"), "event s3:ObjectAccessed:Get not in [s3:Object"),
        (upload(bucket="models"), "bucket models is not datasets"),
        (upload("other/x.csv"), "key other/x.csv does not start with songs/"),
        (upload("songs/x.json"), "key songs/x.json does not end with .csv"),
    ],
)
def test_data_triggers(event: Event, expected: list[str] | str) -> None:
    check(event, expected)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (alert(), ["drift"]),
        (alert(severity="critical"), ["drift"]),
        (alert(env="<absent>"), ["drift"]),  # != matches a missing label (it reads as "")
        (alert(severity="info"), "label severity is 'info', wanted =~warning|critical"),
        (alert(severity="warning-ish"), "wanted =~warning|critical"),  # full match only
        (alert(env="dev"), "label env is 'dev', wanted !=dev"),
        (alert(model="<absent>"), "label model is missing, wanted songs"),
        (alert(model="songs2"), "label model is 'songs2', wanted songs"),
        (alert(alertname="HighLatency"), "alertname HighLatency is not ModelDrift"),
        (alert("resolved"), "drift: alert resolved"),
        (alert("resolved", alertname="PinnedDrift"), ["drift-pinned"]),
        (alert(annotations={"summary": "no epochs"}), "the alert has no annotation 'epochs'"),
        (alert(annotations={"epochs": "many"}), "param epochs: cannot read 'many' as int"),
    ],
)
def test_drift_triggers(event: Event, expected: list[str] | str) -> None:
    check(event, expected)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (manual(), ["manual"]),
        (manual(params={"epochs": 9}), ["manual"]),
        (manual("pinned"), "manual trigger: pipeline pinned is not allowed"),
        (manual("nope"), "manual trigger: unknown pipeline nope"),
        (manual(params={"epoch": 9}), "unknown parameter epoch"),
        (manual(params={"a": 1, "b": 2}), "unknown parameters a, b"),
    ],
)
def test_manual_triggers(event: Event, expected: list[str] | str) -> None:
    check(event, expected)


def only(event: Event, text: str = RULES) -> Match:
    decision = decide(event, rules(text))
    assert isinstance(decision, list) and len(decision) == 1, decision
    return decision[0]


def test_code_match_runs_the_branch_head_with_merged_policy() -> None:
    match = only(push("release/2", ("pipeline/a.py", "pipeline/b.py", "train.py", "x.md")))
    # Without git's facts the payload's commit is only the hint: git gives the head at fire time.
    assert match.version_request == VersionRequest("head", commit=SHA, branch="release/2")
    assert match.reason == "push to release/2 touching pipeline/a.py (+2 more) at 1a2b3c4"
    assert match.params["trigger_reason"] == f"push {SHA}"
    assert match.params["epochs"] == 5  # defaults stay
    # file: max_runs 10; pipeline: cooldown 60, debounce 10; trigger: debounce 30, batch_by
    assert match.policy == Policy(
        debounce_seconds=30, cooldown_seconds=60, max_runs_per_hour=10, batch_by="branch"
    )
    assert match.batch_key == "songs/code-main/branch=release/2"
    assert match.event_id == "code-1"
    assert match.pipeline.name == "songs"
    assert match.pipeline.source.image_for(SHA) == f"registry.example/pipeline:{SHA}"


def test_code_match_with_unknown_changes_says_so() -> None:
    assert only(push("main", None)).reason == "push to main at 1a2b3c4 (changed files unknown)"


def test_data_match_renders_the_object_uri() -> None:
    match = only(upload("songs/2026/11.csv"))
    assert match.params["data_uri"] == "s3://datasets/songs/2026/11.csv"
    assert match.params["trigger_reason"] == "new data songs/2026/11.csv"
    assert match.version_request == VersionRequest("current", branch="main")
    assert match.batch_key == "songs/new-data/prefix=songs/2026/"
    assert match.reason == "new object s3://datasets/songs/2026/11.csv"


def test_drift_match_coerces_rendered_params_to_the_defaults_type() -> None:
    match = only(alert(severity="critical"))
    assert match.params["epochs"] == 12  # annotation "12", default 5 -> int
    assert match.params["trigger_reason"] == "drift songs firing"
    assert match.reason == "alert ModelDrift firing (model=songs, severity=critical, env=prod)"
    assert match.batch_key == "songs/drift/alert=ModelDrift:f00d"
    assert match.policy.concurrency == "skip"
    assert match.version_request == VersionRequest("current", branch="main")


def test_pinned_pipeline_runs_its_pinned_version_for_drift_but_the_head_for_a_push() -> None:
    assert only(alert("firing", alertname="PinnedDrift")).version_request == VersionRequest(
        "pinned", name="v7"
    )
    assert only(push("prod")).version_request.kind == "head"


def test_manual_request_params_override_and_version_is_named() -> None:
    match = only(manual(params={"epochs": 9}, version="abc123", requested_by="ana", reason="why"))
    assert match.params["epochs"] == 9
    assert match.params["data_uri"] == "s3://datasets/songs/base.csv"
    assert match.version_request == VersionRequest("named", name="abc123")
    assert match.reason == "manual run by ana: why"
    assert only(manual()).version_request == VersionRequest("current", branch="main")


def test_manual_may_set_params_the_trigger_declares() -> None:
    text = RULES.replace("    pipelines: [songs]\n", "    params: {note: '{subject.reason}'}\n")
    match = only(manual("pinned", params={"note": "hi"}, reason="r"), text)
    assert match.params == {"note": "hi"}
    assert match.version_request == VersionRequest("pinned", name="v7")


def test_no_trigger_of_the_event_kind() -> None:
    text = RULES.split("  - name: new-data")[0]
    assert decide(upload(), rules(text)) == NoRun("no trigger for kind data")
    assert decide(manual(), rules(text)) == NoRun("no trigger for kind manual")


def test_an_event_runs_each_pipeline_once_first_trigger_wins() -> None:
    second = "  - {name: data-2, on: data, pipeline: songs}\n"
    text = RULES.replace("  - name: drift\n", second + "  - name: drift\n")
    assert outcome_with(upload(), text) == ["new-data"]


def test_triggers_for_several_pipelines_all_run() -> None:
    text = RULES.replace("    alertname: PinnedDrift\n", "")
    assert outcome_with(alert(), text) == ["drift", "drift-pinned"]


def test_no_run_reason_names_the_closest_triggers_first_and_caps_the_list() -> None:
    extra = "".join(
        f"  - {{name: more-{i}, on: code, pipeline: pinned, branches: [x{i}]}}\n" for i in range(3)
    )
    reason = outcome_with(push("main", ("docs/a.md",)), RULES + extra)
    assert isinstance(reason, str)
    assert reason.startswith("no trigger matched: code-main: no path matched")
    assert reason.endswith("; +2 more")


def test_repository_filter_accepts_the_clone_url_in_any_case() -> None:
    text = RULES.replace("repository: team/songs", "repository: https://GitHub.com/Team/Songs/")
    assert outcome_with(push(), text) == ["code-main"]


def outcome_with(event: Event, text: str) -> list[str] | str:
    decision = decide(event, rules(text))
    return decision.reason if isinstance(decision, NoRun) else [m.trigger for m in decision]
