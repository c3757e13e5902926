"""Every place that names the senders agrees with the registry (`trigger_service.sources.SOURCES`).

A sender is a module in trigger_service/sources/ plus the places docs/development.md lists
under "Adding a sender"; until those are derived from the registry, this test names the place
a new sender was forgotten in.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from trigger_service.api import webhooks
from trigger_service.api.explain import ExplainRequest
from trigger_service.cli import build_parser
from trigger_service.settings import SECRET_FIELDS, Settings
from trigger_service.sources import SOURCES

CHART = Path(__file__).resolve().parents[1] / "helm" / "kfp-gitops-trigger"
SENDERS = set(SOURCES)
WEBHOOK_SENDERS = SENDERS - {"manual"}  # a person's route is POST /trigger


def test_every_sender_has_its_route_and_every_webhook_route_a_sender() -> None:
    posts = {r.path for r in webhooks.router.routes if "POST" in getattr(r, "methods", set())}
    assert {p for p in posts if p.startswith("/webhooks/")} == {
        f"/webhooks/{name}" for name in WEBHOOK_SENDERS
    }
    assert "/trigger" in posts


def test_every_sender_has_a_secret_setting_and_its_file_twin() -> None:
    assert set(SECRET_FIELDS) == SENDERS
    for field in SECRET_FIELDS.values():
        assert field in Settings.model_fields, field
        assert f"{field}_file" in Settings.model_fields, field


def test_the_chart_has_a_secret_key_for_every_sender() -> None:
    keys = {field.replace("_", "-") for field in SECRET_FIELDS.values()}
    values = yaml.safe_load((CHART / "values.yaml").read_text())["secrets"]["values"]
    schema = json.loads((CHART / "values.schema.json").read_text())
    secrets = schema["properties"]["secrets"]["properties"]
    assert keys - set(values) == set(), "values.yaml secrets.values"
    assert keys - set(secrets["values"]["properties"]) == set(), "schema: secrets.values"
    assert keys - set(secrets["existingSecretKeys"]["items"]["enum"]) == set(), "schema: keys"


def test_the_charts_notes_give_every_senders_url() -> None:
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    missing = [name for name in sorted(WEBHOOK_SENDERS) if f'"/webhooks/{name}"' not in notes]
    assert not missing, f"templates/NOTES.txt lacks the URL of {missing}"


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
        assert named >= SENDERS, f"{where}: {text!r} lacks {sorted(SENDERS - named)}"
