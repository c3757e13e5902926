"""rules: pure decisions. Given an Event and the rules file, which pipeline runs, how, and why.

Where it sits: worker claims an event -> **rules.decide** -> **rules.policy.admit** -> submit.
Nothing here reads the clock, the network or the store; the worker passes time in.

    load_rules(path) -> Rules                 the rules file, validated; raises RulesError
    parse_rules(text, filename) -> Rules      the same from text
    check_rules(path) -> list[str]            "FILE:LINE: field.path: message" per problem
    decide(event, rules, facts_for=None) -> list[Match] | NoRun
                                              facts_for: what git says about a pushed branch
    policy.admit(policy, now, ...) -> Go | Queue | Suppress;  policy.due_at(...)

Modules: model (schema), loader (YAML + line numbers), checks (cross-file checks), templates
(safe param templates), globs (path/branch globs), match (per-kind filters), decide, policy.
The rules-file vocabulary is documented by example in examples/rules.yaml.
"""

from trigger_service.rules.branch_facts import BranchFacts, FactsFor
from trigger_service.rules.decide import Match, NoRun, VersionRequest, batch_key, decide
from trigger_service.rules.loader import RulesError, check_rules, load_rules, parse_rules
from trigger_service.rules.model import (
    CodeTrigger,
    DataTrigger,
    DriftTrigger,
    ManualTrigger,
    PipelineSpec,
    PolicySpec,
    Rules,
    SourceSpec,
    Trigger,
)
from trigger_service.rules.policy import Admit, Go, Policy, Queue, Suppress, admit, due_at

__all__ = [
    "Admit",
    "BranchFacts",
    "CodeTrigger",
    "DataTrigger",
    "DriftTrigger",
    "FactsFor",
    "Go",
    "ManualTrigger",
    "Match",
    "NoRun",
    "PipelineSpec",
    "Policy",
    "PolicySpec",
    "Queue",
    "Rules",
    "RulesError",
    "SourceSpec",
    "Suppress",
    "Trigger",
    "VersionRequest",
    "admit",
    "batch_key",
    "check_rules",
    "decide",
    "due_at",
    "load_rules",
    "parse_rules",
]
