"""Reading the rules file: YAML with line numbers, schema validation, cross-checks.

    load_rules(path) -> Rules            raises RulesError
    parse_rules(text, filename) -> Rules raises RulesError
    check_rules(path) -> list[str]       the same problems as strings; [] when valid

Every problem reads "FILE:LINE: field.path: message". The YAML is composed into nodes first so
each field path (pydantic's `loc`, or a cross-check's path) maps back to the line it came from.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trigger_service.rules.checks import Path as FieldPath
from trigger_service.rules.checks import Problem, cross_check
from trigger_service.rules.model import SPEC_MODELS, Rules

_KNOWN_FIELDS = sorted({name for model in SPEC_MODELS for name in model.model_fields})
_TAG_ERRORS = ("union_tag_invalid", "union_tag_not_found")


class RulesError(Exception):
    """The rules file is unusable; `problems` lists each one as "FILE:LINE: path: message"."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        super().__init__(f"invalid rules ({count}):\n" + "\n".join(problems))


# A rules file is a few kilobytes; these bounds refuse a file built to exhaust the service.
MAX_RULES_BYTES = 1024 * 1024
# Nodes that aliases may add beyond those written out (a `<<: *defaults` merge adds a few
# dozen); nested aliases (a "billion laughs") would add billions.
MAX_ALIAS_NODES = 10_000


class _AliasBomb(Exception):
    def __init__(self, line: int, expanded: int) -> None:
        super().__init__(line, expanded)
        self.line = line
        self.expanded = expanded


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: `on: code` is a key named "on", not True; and aliases
    bounded: each `*alias` counts the nodes it stands for, refused past MAX_ALIAS_NODES."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._expanded = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if node is not None:
                self._expanded += _node_count(node, self._sizes)
                if self._expanded > MAX_ALIAS_NODES:
                    raise _AliasBomb(event.start_mark.line + 1, self._expanded)
        return super().compose_node(parent, index)


def _node_count(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many nodes `node` stands for when expanded (memoized; a recursive alias counts 1)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # while counting: a node that contains itself adds no more
    total = 1
    if isinstance(node, yaml.MappingNode):
        total += sum(_node_count(k, sizes) + _node_count(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        total += sum(_node_count(item, sizes) for item in node.value)
    sizes[id(node)] = total
    return total


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_rules(path: Path) -> Rules:
    try:
        size = Path(path).stat().st_size
        if size > MAX_RULES_BYTES:
            raise RulesError([f"{path}:1: the file is {size} bytes, over {MAX_RULES_BYTES}"])
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RulesError([f"{path}: cannot read: {error}"]) from error
    return parse_rules(text, str(path), base_dir=Path(path).parent)


def check_rules(path: Path) -> list[str]:
    try:
        load_rules(path)
    except RulesError as error:
        return error.problems
    return []


def parse_rules(text: str, filename: str = "rules.yaml", *, base_dir: Path | None = None) -> Rules:
    """`base_dir`: where relative local `source.repository` paths are resolved from."""
    if len(text) > MAX_RULES_BYTES:
        raise RulesError([f"{filename}:1: the file is over {MAX_RULES_BYTES} bytes"])
    data, lines, problems = _compose(text, filename)
    if not isinstance(data, dict):
        shown = "empty" if data is None else f"a {type(data).__name__}, not a mapping"
        raise RulesError([*problems, f"{filename}:1: the rules file is {shown}"])
    try:
        rules = Rules.model_validate(data)
    except ValidationError as error:
        raise RulesError(problems + _format(filename, lines, _translate(error, data))) from None
    problems += _format(filename, lines, cross_check(rules))
    if problems:
        raise RulesError(problems)
    return _resolve_local_sources(rules, base_dir) if base_dir is not None else rules


def _compose(text: str, filename: str) -> tuple[Any, dict[FieldPath, int], list[str]]:
    loader = _Loader(text)
    lines: dict[FieldPath, int] = {}
    problems: list[str] = []
    try:
        node = loader.get_single_node()
        if node is not None:  # index first: constructing "<<" merge keys rewrites the nodes
            _index(node, (), lines, problems, filename, set())
        data = loader.construct_document(node) if node is not None else None
    except _AliasBomb as bomb:
        raise RulesError(
            [
                f"{filename}:{bomb.line}: YAML aliases expand to more than {MAX_ALIAS_NODES} "
                "nodes (nested anchors and aliases): write the values out"
            ]
        ) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise RulesError([f"{filename}:{line}: YAML syntax: {error.problem or error}"]) from None
    except yaml.YAMLError as error:
        raise RulesError([f"{filename}:1: YAML: {error}"]) from None
    finally:
        loader.dispose()
    return data, lines, problems


def _index(
    node: yaml.Node,
    path: FieldPath,
    lines: dict[FieldPath, int],
    problems: list[str],
    filename: str,
    ancestors: set[int],
) -> None:
    """Record the line of every key and list item; flag duplicate keys (PyYAML keeps the last)."""
    if id(node) in ancestors:  # a recursive alias
        return
    ancestors = ancestors | {id(node)}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if (*path, key) in lines and key != "<<":
                first = lines[(*path, key)]
                message = f"duplicate key (first at line {first})"
                problems.append(f"{filename}:{line}: {_show_path((*path, key))}: {message}")
            lines.setdefault((*path, key), line)
            _index(value_node, (*path, key), lines, problems, filename, ancestors)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _index(item, (*path, index), lines, problems, filename, ancestors)


def _translate(error: ValidationError, data: Any) -> list[Problem]:
    problems: list[Problem] = []
    items = error.errors(include_url=False)
    for item in items:
        if item["type"] == "too_short" and _has_inner_error(item["loc"], items):
            continue  # pydantic counts only the items that validated: the inner error says it
        path = _path_in(data, item["loc"], item["type"])
        problem = Problem(path, _message(item))
        if problem not in problems:
            problems.append(problem)
    return problems


def _has_inner_error(loc: tuple[Any, ...], items: list[Any]) -> bool:
    return any(len(other["loc"]) > len(loc) and other["loc"][: len(loc)] == loc for other in items)


def _path_in(data: Any, loc: tuple[Any, ...], kind: str) -> FieldPath:
    """pydantic's loc, minus its own segments (union tags, "[key]"), walked through the data."""
    path: list[str | int] = []
    node = data
    for position, segment in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(node, dict) and str(segment) in {str(k) for k in node}:
            key = next(k for k in node if str(k) == str(segment))
            path.append(str(key))
            node = node[key]
        elif isinstance(node, list | tuple) and isinstance(segment, int) and segment < len(node):
            path.append(segment)
            node = node[segment]
        elif last and isinstance(segment, str) and segment != "[key]":
            path.append(segment)  # a missing field: shown, at its parent's line
    if kind in _TAG_ERRORS:
        path.append("on")
    return tuple(path)


def _message(item: Any) -> str:
    kind, ctx, value = item["type"], item.get("ctx") or {}, item.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        field = str(item["loc"][-1])
        others = [name for name in _KNOWN_FIELDS if name != field]  # e.g. source.branch
        close = difflib.get_close_matches(field, others, n=1)
        return "unknown field" + (f" (did you mean {close[0]}?)" if close else "")
    if kind == "union_tag_invalid":
        return f"must be one of {_choices(ctx['expected_tags'])} (got {_show(ctx['tag'])})"
    if kind == "union_tag_not_found":
        return "required field is missing (one of code, data, drift, manual)"
    if kind == "literal_error":
        return f"must be one of {_choices(ctx['expected'])} (got {_show(value)})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping (got {_show(value)})"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list (got {_show(value)})"
    if kind == "too_short":
        return "must not be empty"
    message = str(item["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
    return f"{message} (got {_show(value)})" if _is_scalar(value) else message


def _choices(expected: str) -> str:
    return ", ".join(re.findall(r"'([^']*)'", expected))


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _show(value: Any) -> str:
    if not _is_scalar(value):
        return f"a {'list' if isinstance(value, list) else type(value).__name__}"
    return yaml.safe_dump(value, default_flow_style=True, width=200).removesuffix("\n...\n").strip()


def _format(filename: str, lines: dict[FieldPath, int], problems: list[Problem]) -> list[str]:
    """FILE:LINE: path: message, in line order; a path absent from the file takes its parent's."""
    located = []
    for problem in problems:
        path = problem.path
        while path and path not in lines:
            path = path[:-1]
        where = _show_path(problem.path)
        located.append((lines.get(path, 1), (f"{where}: " if where else "") + problem.message))
    return [f"{filename}:{line}: {text}" for line, text in sorted(located, key=lambda x: x[0])]


def _show_path(path: FieldPath) -> str:
    out = ""
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
        elif re.fullmatch(r"[\w-]+", segment):
            out += f".{segment}" if out else segment
        else:
            out += f"[{segment!r}]"
    return out


def _resolve_local_sources(rules: Rules, base_dir: Path) -> Rules:
    """A relative local repository path means: relative to the rules file (`.`: its own repo)."""
    pipelines = []
    for pipeline in rules.pipelines:
        repository = pipeline.source.repository
        if "://" not in repository and not Path(repository).is_absolute():
            source = pipeline.source.model_copy(
                update={"repository": str((base_dir / repository).resolve())}
            )
            pipeline = pipeline.model_copy(update={"source": source})
        pipelines.append(pipeline)
    return rules.model_copy(update={"pipelines": tuple(pipelines)})
