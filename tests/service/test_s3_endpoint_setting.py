"""TRIGGER_S3_ENDPOINT as the docs and the pipeline's S3_ENDPOINT write it: host:port or a URL.

The minio client takes only host:port; a URL used to stop the service with "path in endpoint is
not allowed", naming no setting."""

from __future__ import annotations

import pytest

from trigger_service.settings import Settings, SettingsError, load_settings


def settings(**values: object) -> Settings:
    return load_settings(backend="shadow", **values)  # as the CLI loads them


@pytest.mark.parametrize(
    ("given", "endpoint", "secure"),
    [
        ("minio.minio.svc:9000", "minio.minio.svc:9000", False),
        ("http://minio.minio.svc.cluster.local:9000", "minio.minio.svc.cluster.local:9000", False),
        ("http://127.0.0.1:9000/", "127.0.0.1:9000", False),
        ("https://s3.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com", True),
        ("https://[::1]:9000", "[::1]:9000", True),
    ],
)
def test_a_url_becomes_host_port_and_its_scheme_sets_tls(
    given: str, endpoint: str, secure: bool
) -> None:
    loaded = settings(s3_endpoint=given)
    assert (loaded.s3_endpoint, loaded.s3_secure) == (endpoint, secure)


def test_an_explicit_s3_secure_wins_over_the_scheme() -> None:
    loaded = settings(s3_endpoint="https://minio:9000", s3_secure=False)
    assert (loaded.s3_endpoint, loaded.s3_secure) == ("minio:9000", False)
    loaded = settings(s3_endpoint="minio:9000", s3_secure=True)
    assert (loaded.s3_endpoint, loaded.s3_secure) == ("minio:9000", True)


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("http://minio:9000/bucket", "without a path"),
        ("ftp://minio:9000", "host:port or http"),
        ("http://minio:9000?x=1", "without a path"),
        ("http://", "host:port or http"),
        ("minio:port", "the port is not a number"),
    ],
)
def test_an_endpoint_the_client_cannot_use_is_refused_naming_the_variable(
    given: str, why: str
) -> None:
    with pytest.raises(SettingsError, match=r"^TRIGGER_S3_ENDPOINT: ") as refused:
        settings(s3_endpoint=given)
    assert why in str(refused.value)
    assert given not in str(refused.value)  # the project's settings errors never echo a value


def test_credentials_in_the_url_are_refused_and_not_echoed() -> None:
    with pytest.raises(SettingsError, match="TRIGGER_S3_ACCESS_KEY") as refused:
        settings(s3_endpoint="http://reader:s3cr3t@minio:9000")
    assert "s3cr3t" not in str(refused.value)
