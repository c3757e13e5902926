"""What the operators' CRDs require of the custom resources this project ships.

prometheus-operator (monitoring.coreos.com): the real CRDs, as the pydantic models that
cloudcoil-models-prometheus-operator 0.80.1.0 generates from prometheus-operator v0.80.1's CRD
schemas (required fields, enums, duration patterns, types); a field the CRD does not define is
reported too (the API server would prune it silently). The hand subsets below stay as a second,
stricter check of the fields this project writes.

KServe and OpenShift: no package registry ships their CRDs, so these are hand subsets: the
fields the CRD marks required, the formats it checks, and `additionalProperties: false` at the
levels this project writes (so a misspelt field fails here instead of vanishing on the
cluster). They follow KServe v0.13's CRDs (serving.kserve.io v1beta1 InferenceService,
v1alpha1 ServingRuntime; config/crd/full in kserve/kserve) and OpenShift 4.16's Route
(route.openshift.io/v1 in openshift/api). A field the project starts to use that is not
listed fails: check the CRD of that version, then add it.
"""

from __future__ import annotations

from typing import Any

# prometheus-operator's Duration pattern.
DURATION = {
    "type": "string",
    "pattern": (
        r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?"
        r"(([0-9]+)ms)?)$"
    ),
}
STR = {"type": "string", "minLength": 1}
STRMAP = {"type": "object", "additionalProperties": {"type": "string"}}
INT_OR_STR = {"type": ["integer", "string"]}
LABEL_SELECTOR = {
    "type": "object",
    "properties": {"matchLabels": STRMAP, "matchExpressions": {"type": "array"}},
    "additionalProperties": False,
}
METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": STR, "namespace": STR, "labels": STRMAP, "annotations": STRMAP},
}
RESOURCES = {
    "type": "object",
    "properties": {"requests": STRMAP, "limits": STRMAP},
    "additionalProperties": False,
}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": required or [],
        "additionalProperties": False,
    }


def _cr(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": spec,
        },
        "additionalProperties": False,
    }


SERVICE_MONITOR = _cr(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    _obj(
        {
            "selector": LABEL_SELECTOR,
            "namespaceSelector": {"type": "object"},
            "jobLabel": STR,
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": _obj(
                    {
                        "port": STR,
                        "targetPort": INT_OR_STR,
                        "path": {"type": "string", "pattern": "^/"},
                        "scheme": {"enum": ["http", "https"]},
                        "interval": DURATION,
                        "scrapeTimeout": DURATION,
                        "honorLabels": {"type": "boolean"},
                    }
                ),
            },
        },
        ["selector", "endpoints"],
    ),
)

PROMETHEUS_RULE = _cr(
    "monitoring.coreos.com/v1",
    "PrometheusRule",
    _obj(
        {
            "groups": {
                "type": "array",
                "minItems": 1,
                "items": _obj(
                    {
                        "name": STR,
                        "interval": DURATION,
                        "rules": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                **_obj(
                                    {
                                        "alert": STR,
                                        "record": STR,
                                        "expr": INT_OR_STR,
                                        "for": DURATION,
                                        "keep_firing_for": DURATION,
                                        "labels": STRMAP,
                                        "annotations": STRMAP,
                                    },
                                    ["expr"],
                                ),
                                "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                            },
                        },
                    },
                    ["name", "rules"],
                ),
            }
        },
        ["groups"],
    ),
)

_SECRET_KEY = _obj({"name": STR, "key": STR, "optional": {"type": "boolean"}}, ["key"])

ALERTMANAGER_CONFIG = _cr(
    "monitoring.coreos.com/v1alpha1",
    "AlertmanagerConfig",
    _obj(
        {
            "route": _obj(
                {
                    "receiver": STR,
                    "matchers": {
                        "type": "array",
                        "items": _obj(
                            {
                                "name": STR,
                                "value": {"type": "string"},
                                "matchType": {"enum": ["!=", "=", "=~", "!~"]},
                                "regex": {"type": "boolean"},
                            },
                            ["name"],
                        ),
                    },
                    "groupBy": {"type": "array", "items": STR},
                    "groupWait": DURATION,
                    "groupInterval": DURATION,
                    "repeatInterval": DURATION,
                    "continue": {"type": "boolean"},
                    "routes": {"type": "array"},
                }
            ),
            "receivers": {
                "type": "array",
                "items": _obj(
                    {
                        "name": STR,
                        "webhookConfigs": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "url": {"type": "string", "pattern": "^(http|https)://.+$"},
                                    "urlSecret": _SECRET_KEY,
                                    "sendResolved": {"type": "boolean"},
                                    "maxAlerts": {"type": "integer", "minimum": 0},
                                    "httpConfig": _obj(
                                        {
                                            "authorization": _obj(
                                                {"type": STR, "credentials": _SECRET_KEY}
                                            ),
                                            "basicAuth": {"type": "object"},
                                            "tlsConfig": {"type": "object"},
                                        }
                                    ),
                                }
                            ),
                        },
                    },
                    ["name"],
                ),
            },
        }
    ),
)

_CONTAINER = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": STR,
        "image": STR,
        "args": {"type": "array", "items": {"type": "string"}},
        "resources": RESOURCES,
    },
}

SERVING_RUNTIME = _cr(
    "serving.kserve.io/v1alpha1",
    "ServingRuntime",
    _obj(
        {
            "multiModel": {"type": "boolean"},
            "disabled": {"type": "boolean"},
            "protocolVersions": {
                "type": "array",
                "items": {"enum": ["v1", "v2", "grpc-v1", "grpc-v2"]},
            },
            "supportedModelFormats": {
                "type": "array",
                "minItems": 1,
                "items": _obj(
                    {
                        "name": STR,
                        "version": STR,
                        "autoSelect": {"type": "boolean"},
                        "priority": {"type": "integer"},
                    },
                    ["name"],
                ),
            },
            "annotations": STRMAP,
            "labels": STRMAP,
            "containers": {"type": "array", "minItems": 1, "items": _CONTAINER},
            "volumes": {"type": "array"},
        },
        ["containers"],
    ),
)

INFERENCE_SERVICE = _cr(
    "serving.kserve.io/v1beta1",
    "InferenceService",
    _obj(
        {
            "predictor": _obj(
                {
                    "minReplicas": {"type": "integer", "minimum": 0},
                    "maxReplicas": {"type": "integer", "minimum": 1},
                    "serviceAccountName": STR,
                    "model": _obj(
                        {
                            "modelFormat": _obj({"name": STR, "version": STR}, ["name"]),
                            "runtime": STR,
                            "storageUri": {"type": "string", "pattern": "^[a-z0-9]+://"},
                            "resources": RESOURCES,
                            "args": {"type": "array"},
                            "env": {"type": "array"},
                        },
                        ["modelFormat"],
                    ),
                },
                ["model"],
            )
        },
        ["predictor"],
    ),
)

ROUTE = _cr(
    "route.openshift.io/v1",
    "Route",
    _obj(
        {
            "host": STR,
            "path": {"type": "string", "pattern": "^/"},
            "to": _obj(
                {"kind": {"enum": ["Service", ""]}, "name": STR, "weight": {"type": "integer"}},
                ["kind", "name"],
            ),
            "port": _obj({"targetPort": INT_OR_STR}, ["targetPort"]),
            "tls": _obj(
                {
                    "termination": {"enum": ["edge", "reencrypt", "passthrough"]},
                    "insecureEdgeTerminationPolicy": {"enum": ["Allow", "None", "Redirect", ""]},
                },
                ["termination"],
            ),
            "wildcardPolicy": {"enum": ["None", "Subdomain"]},
        },
        ["to"],
    ),
)

# (apiVersion, kind) -> schema.
CUSTOM_RESOURCES: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE,
    ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"): ALERTMANAGER_CONFIG,
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): SERVING_RUNTIME,
    ("serving.kserve.io/v1beta1", "InferenceService"): INFERENCE_SERVICE,
    ("route.openshift.io/v1", "Route"): ROUTE,
}


def _operator_models() -> dict[tuple[str, str], Any]:
    from cloudcoil.models.prometheus_operator import v1, v1alpha1

    return {
        ("monitoring.coreos.com/v1", "ServiceMonitor"): v1.ServiceMonitor,
        ("monitoring.coreos.com/v1", "PrometheusRule"): v1.PrometheusRule,
        ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"): v1alpha1.AlertmanagerConfig,
    }


def _dropped(given: Any, kept: Any, path: str = "") -> list[str]:
    """Keys of `given` that the model did not keep: fields the CRD does not define."""
    if isinstance(given, dict) and isinstance(kept, dict):
        out = []
        for key, value in given.items():
            where = f"{path}/{key}"
            out += (
                [f"{where}: not in the CRD"]
                if key not in kept
                else _dropped(value, kept[key], where)
            )
        return out
    if isinstance(given, list) and isinstance(kept, list):
        return [
            p
            for i, (a, b) in enumerate(zip(given, kept, strict=True))
            for p in _dropped(a, b, f"{path}/{i}")
        ]
    return []


def crd_problems(obj: dict[str, Any]) -> list[str]:
    """Why the operator would refuse or silently prune `obj` (empty if it would not)."""
    import jsonschema
    import pydantic

    key = (obj["apiVersion"], obj["kind"])
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft202012Validator(CUSTOM_RESOURCES[key]).iter_errors(obj)
    ]
    model = _operator_models().get(key)
    if model is not None:
        try:
            parsed = model.model_validate(obj)
        except pydantic.ValidationError as e:
            problems += [
                f"{'/'.join(map(str, err['loc']))}: {err['msg']} (CRD)" for err in e.errors()
            ]
        else:
            problems += _dropped(obj, parsed.model_dump(by_alias=True, exclude_unset=True))
    return problems
