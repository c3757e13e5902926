"""The docs speak of what the code has: every setting is documented, every link resolves."""

from __future__ import annotations

import re
from pathlib import Path

from trigger_service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_the_configuration_doc() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = [
        f"TRIGGER_{name.upper()}"
        for name in Settings.model_fields
        if f"`TRIGGER_{name.upper()}`" not in doc and f"TRIGGER_{name.upper()}`" not in doc
    ]
    assert not missing, f"undocumented settings: {missing}"


def test_relative_links_in_readme_and_docs_resolve() -> None:
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken
