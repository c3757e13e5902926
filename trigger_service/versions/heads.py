"""Asking the repository about a pushed branch: the facts `rules.decide` decides a push on.

    heads = BranchHeads(git, current)          current(pipeline, branch) -> commit | None
    facts_for = heads.for_batch()              one git round trip per (pipeline, branch) a batch
    facts_for(pipeline, branch) -> BranchFacts

The head comes from `git ls-remote` and a fetch of the branch ref, never from a payload; the
changed paths from `git diff --name-only` between the branch's current version (the last commit
this pipeline built from it) and that head.
"""

from __future__ import annotations

from collections.abc import Callable

from trigger_service.errors import TriggerError
from trigger_service.rules import BranchFacts, FactsFor, PipelineSpec
from trigger_service.versions.git import BranchGone, GitCache

Current = Callable[[str, str], str | None]


class BranchHeads:
    def __init__(self, git: GitCache, current: Current) -> None:
        self.git = git
        self.current = current

    def facts(self, pipeline: PipelineSpec, branch: str) -> BranchFacts:
        """Raises TemporaryError (network) or PermanentError (no such branch or repository)."""
        url = pipeline.source.repository
        current = self.current(pipeline.name, branch)
        try:
            head = self.git.fetch_branch(url, branch)
        except BranchGone:
            # Deleted between the push and this decision (a merged feature branch): no code
            # to build, which is an answer, not a failure to dead-letter.
            return BranchFacts(branch, "", current, "gone", ())
        relation = self.git.relation(url, current, head)
        changed: tuple[str, ...] | None = None
        if relation in ("ahead", "diverged"):
            assert current is not None
            changed = self.git.changed_paths(url, current, head)
        elif relation in ("same", "older"):
            changed = ()
        return BranchFacts(branch, head, current, relation, changed)

    def for_batch(self) -> FactsFor:
        """A lookup that asks git once per (repository, pipeline, branch) and then remembers
        the answer, or the error: a remote that times out costs one timeout per batch, not one
        per event."""
        seen: dict[tuple[str, str, str], BranchFacts | TriggerError] = {}

        def facts_for(pipeline: PipelineSpec, branch: str) -> BranchFacts:
            key = (pipeline.source.repository, pipeline.name, branch)
            if key not in seen:
                try:
                    seen[key] = self.facts(pipeline, branch)
                except TriggerError as exc:
                    seen[key] = exc
            answer = seen[key]
            if isinstance(answer, TriggerError):
                raise answer
            return answer

        return facts_for
