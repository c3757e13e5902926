"""What git said about a tracked (pipeline, branch) when a push is decided: data only.

The worker asks git (versions.heads) and passes the answers in, so `decide` stays free of I/O:

    facts_for(pipeline, branch) -> BranchFacts     may raise Temporary/PermanentError

`relation` places the head against the branch's current version (the last commit this pipeline
built from the branch, which is also the diff base):

    first      nothing built from this branch yet: every path counts as changed
    same       the head is the current version: already built
    ahead      the head descends from it: the paths `git diff` names
    older      the head is an ancestor of it: older than the current version, no run
    diverged   a force push that kept a common ancestor: the paths that differ from it
    unrelated  a force push with no common ancestor: every path counts as changed
    missing    the current version is gone from the repository: every path counts as changed
    gone       the branch itself no longer exists (deleted after the push): no run, head ""
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from trigger_service.rules.model import PipelineSpec

Relation = Literal["first", "same", "ahead", "older", "diverged", "unrelated", "missing", "gone"]
SHORT = 12


@dataclass(frozen=True)
class BranchFacts:
    branch: str
    head: str  # the branch head git reported (ls-remote, then fetched)
    current: str | None  # the branch's current version: the diff base
    relation: Relation
    changed_paths: tuple[str, ...] | None  # None: every path counts as changed

    @property
    def nothing_new(self) -> str | None:
        """Why this head runs nothing (already built, or older), or None."""
        if self.relation == "same":
            return f"already built at {self.head[:SHORT]}"
        if self.relation == "gone":
            return f"branch {self.branch} no longer exists in the repository: nothing to build"
        if self.relation == "older":
            assert self.current is not None
            return f"{self.head[:SHORT]} is older than the current version {self.current[:SHORT]}"
        return None

    @property
    def why_all_paths(self) -> str | None:
        """Why every path counts as changed, or None when git named them."""
        current = (self.current or "")[:SHORT]
        return {
            "first": f"first build of {self.branch}: every path counts as changed",
            "unrelated": f"force push with no common ancestor with {current}: "
            "every path counts as changed",
            "missing": f"the current version {current} is no longer in the repository "
            "(force push): every path counts as changed",
        }.get(self.relation)

    @property
    def summary(self) -> str:
        """One clause for a decision's reason: what git said."""
        if reason := self.nothing_new or self.why_all_paths:
            return reason
        count = len(self.changed_paths or ())
        since = (self.current or "")[:SHORT]
        plural = "path" if count == 1 else "paths"
        if self.relation == "diverged":
            return f"force push: {count} {plural} differ from the current version {since}"
        return f"git: {count} {plural} changed since {since}"

    def to_dict(self, max_paths: int = 200) -> dict[str, Any]:
        paths = self.changed_paths
        return {
            "branch": self.branch,
            "head": self.head,
            "diff_base": self.current,
            "relation": self.relation,
            "changed_paths": None if paths is None else list(paths[:max_paths]),
            "changed_count": None if paths is None else len(paths),
            "why": self.summary,
        }


FactsFor = Callable[[PipelineSpec, str], BranchFacts]
