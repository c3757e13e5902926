"""The rules file's schema: frozen pydantic models, unknown keys refused (a typo is an error).

Shape checks live here; checks across the file (names resolve, no duplicates, templates and
label regexes valid) live in `checks.py`, so each error can point at its own line.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from trigger_service.errors import RejectedInput
from trigger_service.events import EventKind
from trigger_service.rules.templates import TemplateError, check_image_template, render_image
from trigger_service.versions.refs import branch_name, version_name

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_MODULE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_SSH_LIKE = re.compile(r"[\w.-]+@[\w.-]+:")
# git's `<transport>::<address>` runs a remote helper (`ext::sh -c ...` runs a command).
_HELPER = re.compile(r"[A-Za-z0-9][A-Za-z0-9+.-]*::")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _name(value: str) -> str:
    # Names end up in batch keys ("pipeline/trigger/...") and KFP run names.
    if not _NAME.fullmatch(value):
        raise ValueError("must be 1-63 letters, digits, '.', '_' or '-', starting alphanumeric")
    return value


def _param_name(value: str) -> str:
    if not value.isidentifier():
        raise ValueError(f"parameter name {value!r} must be a Python identifier")
    return value


def _scalar(value: Any) -> Any:
    if not isinstance(value, str | int | float | bool):
        raise ValueError("must be a string, number or boolean")
    return value


def _not_empty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _repository(value: str) -> str:
    if value.startswith("-"):
        raise ValueError("must not start with '-' (git would read it as an option)")
    if _HELPER.match(value):
        raise ValueError("git remote helpers (<transport>::<address>, e.g. ext::) are refused")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    scheme, sep, rest = value.partition("://")
    if sep and scheme not in ("https", "file"):
        raise ValueError("must be an https:// or file:// URL or a local path")
    if sep and "@" in rest.partition("/")[0]:
        # The URL is shown in logs, errors, /events and KFP version descriptions.
        raise ValueError(
            "must not carry credentials (user:token@): set TRIGGER_GIT_TOKEN or its _FILE form"
        )
    if not sep and _SSH_LIKE.match(value):
        raise ValueError("ssh remotes are not supported: use an https:// or file:// URL")
    return _not_empty(value)


def _package_path(value: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts:
        raise ValueError("must be a relative path inside the repository")
    return value


def _module(value: str) -> str:
    if not _MODULE.fullmatch(value):
        raise ValueError("must be a dotted Python module name, e.g. pipeline or my_pkg.pipeline")
    return value


def _image_template(value: str) -> str:
    try:
        check_image_template(value)
    except TemplateError as error:
        raise ValueError(str(error)) from None
    return value


def _reconcile_interval(value: float) -> float:
    # Under a second would list the bucket back to back; over a week is as good as never.
    if value != 0 and not 1 <= value <= RECONCILE_MAX_SECONDS:
        raise ValueError(f"must be 0 (off) or between 1 and {RECONCILE_MAX_SECONDS:.0f} seconds")
    return value


RECONCILE_MAX_SECONDS = 7 * 24 * 3600.0

# S3's rules, with legacy us-east-1 names (capitals, '_', up to 255); never '/', ':' or spaces.
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")


def _bucket_name(value: str) -> str:
    # A URL or a path here matched no notification and failed every listing, for ever.
    if "/" in value or ":" in value:
        raise ValueError(
            "a URL or path, not a bucket name: give the bucket alone, the folder in prefix"
        )
    if not _BUCKET.fullmatch(value):
        raise ValueError("not a bucket name (3-255 letters, digits, '.', '_', '-')")
    return value


def _poll_interval(value: float) -> float:
    # Under a second would ask the forge back to back (the poll wakes every 50 ms at most);
    # over a week is as good as never, which 0 says.
    if value != 0 and not 1 <= value <= POLL_MAX_SECONDS:
        raise ValueError(f"must be 0 (off) or between 1 and {POLL_MAX_SECONDS:.0f} seconds")
    return value


POLL_MAX_SECONDS = 7 * 24 * 3600.0

Name = Annotated[str, AfterValidator(_name)]
ParamName = Annotated[str, AfterValidator(_param_name)]
Scalar = Annotated[Any, AfterValidator(_scalar)]
Text = Annotated[str, AfterValidator(_not_empty)]
Globs = Annotated[tuple[Text, ...], Field(min_length=1)]
Seconds = Annotated[float, Field(ge=0, strict=True)]  # strict: `true` is not 1 second
Count = Annotated[int, Field(ge=0, strict=True)]
ReconcileSeconds = Annotated[float, Field(strict=True), AfterValidator(_reconcile_interval)]
PollSeconds = Annotated[float, Field(strict=True), AfterValidator(_poll_interval)]
Concurrency = Literal["queue-one", "skip", "parallel"]
BatchBy = Literal["none", "prefix", "branch", "alert"]


class Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PolicySpec(Spec):
    """One layer of policy; unset fields fall through to the less specific layer."""

    debounce_seconds: Seconds | None = None
    max_wait_seconds: Seconds | None = None
    cooldown_seconds: Seconds | None = None
    concurrency: Concurrency | None = None
    max_runs_per_hour: Count | None = None
    batch_by: BatchBy | None = None


def _branch(value: str) -> str:
    try:
        return branch_name(value, "branch")
    except RejectedInput as error:
        raise ValueError(str(error).removeprefix("branch: ")) from None


def _branch_globs(values: tuple[str, ...]) -> tuple[str, ...]:
    # A glob-free entry is a branch the poll asks git about: it must be one git accepts (one
    # bad name would fail the ls-remote of every branch of its repository).
    for value in values:
        if not set("*?[") & set(value):
            _branch(value)
    return values


def _version(value: str) -> str:
    try:
        return version_name(value, "version")
    except RejectedInput as error:
        raise ValueError(str(error).removeprefix("version: ")) from None


class SourceSpec(Spec):
    repository: Annotated[str, AfterValidator(_repository)]
    branch: Annotated[str, AfterValidator(_branch)] = "main"
    package_path: Annotated[str, AfterValidator(_package_path)] | None = None
    module: Annotated[str, AfterValidator(_module)] | None = None
    image_template: Annotated[str, AfterValidator(_image_template)] | None = None
    # `git ls-remote` of each tracked branch this often (0: never), as Argo CD's reconciliation
    # interval: a push no webhook reported still runs.
    poll_seconds: PollSeconds = 300.0

    @model_validator(mode="after")
    def _one_way_to_get_the_pipeline(self) -> SourceSpec:
        if (self.package_path is None) == (self.module is None):
            raise ValueError("set exactly one of package_path (a compiled YAML) or module")
        if self.module is not None and self.image_template is None:
            raise ValueError("module needs image_template (the compile CLI takes --image)")
        return self

    def image_for(self, commit: str) -> str | None:
        """The image to compile with at `commit`; None for a precompiled package_path."""
        return None if self.image_template is None else render_image(self.image_template, commit)


class PipelineSpec(Spec):
    name: Name
    kfp_pipeline: Text  # defaults to name
    experiment: Text  # defaults to name
    source: SourceSpec
    defaults: dict[ParamName, Scalar] = Field(default_factory=dict)
    # pinned: data, drift and unnamed manual runs use it (a commit id, short id or branch)
    version: Annotated[str, AfterValidator(_version)] | None = None
    policy: PolicySpec = PolicySpec()

    @model_validator(mode="before")
    @classmethod
    def _default_names(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            data = {"kfp_pipeline": data["name"], "experiment": data["name"], **data}
        return data


class TriggerSpec(Spec):
    on: str  # each kind narrows it to a Literal: the union's discriminator
    name: Name
    params: dict[ParamName, Scalar] = Field(default_factory=dict)  # str values are templates
    policy: PolicySpec = PolicySpec()

    @property
    def kind(self) -> EventKind:
        return EventKind(self.on)


class CodeTrigger(TriggerSpec):
    on: Literal["code"]
    pipeline: Name
    repository: Text | None = None  # None: any repository
    # None: the pipeline source's branch
    branches: Annotated[Globs, AfterValidator(_branch_globs)] | None = None
    paths: Globs | None = None  # None: any change


class DataTrigger(TriggerSpec):
    on: Literal["data"]
    pipeline: Name
    bucket: Annotated[Text, AfterValidator(_bucket_name)] | None = None  # None: any bucket
    prefix: str = ""
    suffix: str = ""
    events: Globs = ("s3:ObjectCreated:*",)
    # List bucket + prefix this often and make an event for each object no notification
    # brought (0: off; a trigger without a bucket is not listed). See trigger_service/reconcile.
    reconcile_seconds: ReconcileSeconds = 600.0
    reconcile_baseline: Literal["skip", "run"] = "skip"  # objects there at the first listing


class DriftTrigger(TriggerSpec):
    on: Literal["drift"]
    pipeline: Name
    alertname: Text | None = None  # None: any alert
    labels: dict[str, str] = Field(default_factory=dict)  # "v" exact, "=~re", "!=v"
    status: Annotated[tuple[Literal["firing", "resolved"], ...], Field(min_length=1)] = ("firing",)


class ManualTrigger(TriggerSpec):
    on: Literal["manual"]
    pipelines: Annotated[tuple[Name, ...], Field(min_length=1)] | None = None  # None: all


Trigger = Annotated[
    CodeTrigger | DataTrigger | DriftTrigger | ManualTrigger, Field(discriminator="on")
]


class Rules(Spec):
    policy: PolicySpec = PolicySpec()
    pipelines: Annotated[tuple[PipelineSpec, ...], Field(min_length=1)]
    triggers: tuple[Trigger, ...] = ()

    def pipeline(self, name: str) -> PipelineSpec | None:
        return next((p for p in self.pipelines if p.name == name), None)

    def triggers_for(self, kind: EventKind) -> list[Trigger]:
        return [t for t in self.triggers if t.on == kind.value]


SPEC_MODELS: tuple[type[Spec], ...] = (
    Rules,
    PolicySpec,
    PipelineSpec,
    SourceSpec,
    CodeTrigger,
    DataTrigger,
    DriftTrigger,
    ManualTrigger,
)
