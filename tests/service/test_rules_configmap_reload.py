"""The rules file as the kubelet mounts a ConfigMap (no subPath): rules.yaml is a symlink into
..data, itself a symlink to a timestamped folder that an update replaces atomically. The service
picks the new rules up without a restart, which is why the chart and the manifests carry no hash
suffix or checksum for the rules ConfigMap (docs/deployment.md, "Changing the rules")."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.repo import rules_text
from trigger_service.service import RulesHolder


def _publish(mount: Path, version: str, text: str) -> None:
    """What the kubelet's AtomicWriter does: write a new folder, then swap ..data to it."""
    folder = mount / f"..{version}"
    folder.mkdir()
    (folder / "rules.yaml").write_text(text)
    tmp = mount / "..data_tmp"
    tmp.symlink_to(folder.name)
    os.replace(tmp, mount / "..data")
    if not (mount / "rules.yaml").is_symlink():
        (mount / "rules.yaml").symlink_to("..data/rules.yaml")


def test_a_configmap_update_is_picked_up_and_a_bad_one_keeps_the_last_good(
    tmp_path: Path,
) -> None:
    mount = tmp_path / "rules"
    mount.mkdir()
    _publish(mount, "2026_11_29_20_00_00.1", rules_text("file:///srv/git/one.git"))
    old = mount / "..2026_11_29_20_00_00.1" / "rules.yaml"
    os.utime(old, (1_700_000_000, 1_700_000_000))  # an older write, as the first sync was
    holder = RulesHolder(mount / "rules.yaml")
    assert holder().pipelines[0].source.repository == "file:///srv/git/one.git"

    _publish(mount, "2026_11_29_20_01_00.2", rules_text("file:///srv/git/two.git"))
    assert holder().pipelines[0].source.repository == "file:///srv/git/two.git"

    _publish(mount, "2026_11_29_20_02_00.3", "pipelines: [{name: 1}]\n")  # an invalid edit
    assert holder().pipelines[0].source.repository == "file:///srv/git/two.git"
