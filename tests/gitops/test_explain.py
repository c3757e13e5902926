"""POST /explain for a push shows what git said: the head, the diff base, the changed paths used
and why, beside the payload's own (hint) file list; it changes nothing."""

from __future__ import annotations

from pathlib import Path

from tests.gitops.rules import gitops_rules
from tests.support.gitops import GitOpsService, push_payload
from tests.support.repo import GitRepo, git


def test_explain_shows_head_base_paths_and_why(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    v1 = repo.commit({"pipeline.yaml": "# v1\n"}, "v1")
    service = GitOpsService.start(tmp_path / "svc", gitops_rules(repo.url))
    try:
        service.push_github(push_payload(repo, v1))
        service.wait_for(lambda: service.current_version() == v1, "v1 built")
        v2 = repo.commit({"pipeline/train.py": "print(2)\n", "README.md": "r\n"}, "v2")
        stale = push_payload(repo, v1, "0" * 40, ["docs/only.md"])  # an old, wrong hint
        answer = service.client.post(
            "/explain",
            json={
                "source": "github",
                "headers": {"X-GitHub-Event": "push", "X-GitHub-Delivery": "x1"},
                "payload": stale,
            },
        )
        assert answer.status_code == 200, answer.text
        (explained,) = answer.json()["explanations"]
        assert explained["payload_hint"] == {"after": v1, "changed_paths": ["docs/only.md"]}
        (match,) = explained["matches"]
        assert match["git"] == {
            "branch": "main",
            "head": v2,
            "diff_base": v1,
            "relation": "ahead",
            "changed_paths": ["README.md", "pipeline/train.py"],
            "changed_count": 2,
            "why": f"git: 2 paths changed since {v1[:12]}",
        }
        assert match["version_request"]["kind"] == "head"
        assert match["version_request"]["commit"] == v2
        assert "touching pipeline/train.py" in match["reason"]
        assert service.current_version() == v1 and len(service.runs()) == 1

        git(repo.path, "reset", "-q", "--hard", v1)
        (again,) = service.client.post(
            "/explain",
            json={
                "source": "github",
                "headers": {"X-GitHub-Event": "push", "X-GitHub-Delivery": "x2"},
                "payload": stale,
            },
        ).json()["explanations"]
        assert again["run"] is False and again["reason"] == f"no run: already built at {v1[:12]}"
        assert again["git"]["songs"]["relation"] == "same"
    finally:
        service.stop()
