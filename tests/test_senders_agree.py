"""Every place that names the senders agrees with the registry (`trigger_service.sources.SOURCES`).

The code derives the webhook routes, the secret lookup and the help texts from the registry. What
cannot import it is checked here against each source's declared attributes (`route`,
`secret_setting`): the Settings fields (pydantic-settings reads declared fields only), the docs
and the chart's values, schema and NOTES. One test per place, parametrized by sender, so a
failure names both: `test_the_charts_values_have_the_senders_secret_key[gitea]`, "gitea: ...".
The chart's Secret and Deployment env iterate over `secrets.values`; rendering them for every
sender is tests/deploy/test_chart_render.py's
`test_every_senders_secret_becomes_the_file_its_setting_reads`.
"""

from __future__ import annotations

import argparse
import json
import re
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from trigger_service.api import webhooks
from trigger_service.api.explain import ExplainRequest
from trigger_service.cli import build_parser
from trigger_service.settings import SECRETS, Settings
from trigger_service.sources import SOURCES

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "kfp-gitops-trigger"
DOCS = ROOT / "docs"
SENDERS = sorted(SOURCES)


def _variable(name: str) -> str:
    """TRIGGER_<FIELD>: the environment variable of the sender's secret."""
    return f"TRIGGER_{SOURCES[name].secret_setting.upper()}"


def _chart_key(name: str) -> str:
    """The key of the sender's secret in the chart's Secret (github_secret -> github-secret)."""
    return SOURCES[name].secret_setting.replace("_", "-")


def _rows(page: str) -> list[list[str]]:
    """The cells of every Markdown table row of docs/<page>."""
    lines = (DOCS / page).read_text().splitlines()
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in lines
        if line.startswith("|")
    ]


def _post_routes() -> dict[str, typing.Any]:
    return {r.path: r for r in webhooks.router.routes if "POST" in getattr(r, "methods", set())}


# --- the service ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", SENDERS)
def test_the_sender_has_its_route(name: str) -> None:
    source = SOURCES[name]
    route = _post_routes().get(source.route)
    assert route is not None, f"{name}: the service has no POST {source.route}"
    assert route.summary == source.summary, name


def test_every_post_route_belongs_to_a_sender() -> None:
    stray = set(_post_routes()) - {source.route for source in SOURCES.values()}
    assert not stray, f"POST routes no registered sender declares: {sorted(stray)}"


@pytest.mark.parametrize("name", SENDERS)
def test_the_senders_secret_is_a_setting_with_its_file_twin(name: str) -> None:
    field = SOURCES[name].secret_setting
    fields = Settings.model_fields
    assert field in fields, f"{name}: settings.py has no field {field} ({_variable(name)})"
    assert fields[field].annotation == SecretStr | None, f"{name}: {field} is not a SecretStr"
    twin = fields.get(f"{field}_file")
    assert twin is not None, f"{name}: settings.py has no field {field}_file"
    assert twin.annotation == Path | None, f"{name}: {field}_file is not a Path"
    assert field in SECRETS, f"{name}: {field} is not in settings.SECRETS (its file is not read)"


def test_every_secret_setting_with_a_file_twin_is_read_from_it() -> None:
    # A sender dropped from the registry leaves its field behind, and TRIGGER_<FIELD>_FILE
    # would then be accepted and silently never read.
    fields = Settings.model_fields
    unread = sorted(f for f in fields if f"{f}_file" in fields and f not in SECRETS)
    assert not unread, (
        f"settings whose *_file twin nothing reads (no sender declares them?): {unread}"
    )


def _option_help(parser: argparse.ArgumentParser, command: str, dest: str) -> str:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    (action,) = [a for a in sub.choices[command]._actions if a.dest == dest]
    return str(action.help)


def test_the_help_texts_name_every_sender() -> None:
    parser = build_parser()
    texts = {
        "POST /explain source": ExplainRequest.model_fields["source"].description or "",
        "trigger-service explain SOURCE": _option_help(parser, "explain", "source"),
        "trigger-service events --source": _option_help(parser, "events", "source"),
    }
    for where, text in texts.items():
        named = {word.strip(" ,.") for word in text.split()}
        assert named >= set(SENDERS), f"{where}: {text!r} lacks {sorted(set(SENDERS) - named)}"


# --- the docs -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SENDERS)
def test_the_configuration_doc_has_the_senders_secret_rows(name: str) -> None:
    first_cells = {row[0] for row in _rows("configuration.md")}
    for variable in (_variable(name), f"{_variable(name)}_FILE"):
        assert f"`{variable}`" in first_cells, (
            f"{name}: docs/configuration.md has no {variable} row"
        )


@pytest.mark.parametrize("name", SENDERS)
def test_the_senders_doc_gives_the_senders_url_and_secret(name: str) -> None:
    route, variable = SOURCES[name].route, _variable(name)
    rows = _rows("senders.md")
    urls = [
        r for r in rows if len(r) > 2 and r[1].endswith(f"{route}`") and r[2] == f"`{variable}`"
    ]
    assert urls, f"{name}: docs/senders.md's first table has no row with {route} and {variable}"
    secret = [f"`{route}`", f"`{variable}`", f"`{variable}_FILE`", f"`{_chart_key(name)}`"]
    assert any(r[:3] == secret[:3] and r[3].startswith(secret[3]) for r in rows if len(r) > 3), (
        f"{name}: docs/senders.md's Secrets table has no row | {' | '.join(secret)} |"
    )


def test_the_senders_doc_names_no_route_without_a_sender() -> None:
    routes = {source.route for source in SOURCES.values()}
    named = {r[0].strip("`") for r in _rows("senders.md") if r[0].startswith("`/")}
    stray = named - routes
    assert not stray, f"docs/senders.md's Secrets table: routes of no sender {sorted(stray)}"


# --- the chart ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SENDERS)
def test_the_charts_values_and_schema_have_the_senders_secret_key(name: str) -> None:
    key = _chart_key(name)
    values = yaml.safe_load((CHART / "values.yaml").read_text())["secrets"]["values"]
    assert key in values, f"{name}: helm/kfp-gitops-trigger/values.yaml secrets.values lacks {key}"
    schema = json.loads((CHART / "values.schema.json").read_text())
    secrets = schema["properties"]["secrets"]["properties"]
    assert key in secrets["values"]["properties"], (
        f"{name}: values.schema.json secrets.values.properties lacks {key}"
    )
    assert key in secrets["existingSecretKeys"]["items"]["enum"], (
        f"{name}: values.schema.json secrets.existingSecretKeys' enum lacks {key}"
    )


@pytest.mark.parametrize("name", SENDERS)
def test_the_charts_notes_give_the_senders_url(name: str) -> None:
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    route = SOURCES[name].route
    assert f'"path" "{route}"' in notes, f"{name}: templates/NOTES.txt lacks the URL {route}"


def test_the_charts_notes_give_no_url_without_a_sender() -> None:
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    stray = set(re.findall(r'"path" "([^"]+)"', notes)) - {s.route for s in SOURCES.values()}
    assert not stray, f"templates/NOTES.txt: URLs of no sender {sorted(stray)}"
