"""Direct-sink endpoint documents: what is delivered to, and why an endpoint is refused."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from diffio_progress.core.endpoints import (
    EndpointRefused,
    check_secret,
    is_enabled,
    read_endpoint,
)

SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()


def doc(**fields: Any) -> dict[str, Any]:
    return {"apiKeyId": "key_1", "url": "https://hooks.example.com/x", "secret": SECRET, **fields}


def test_a_well_formed_endpoint_wants_every_type_unless_it_lists_some() -> None:
    every = read_endpoint("ep1", doc(), allow_private=False)
    assert every.wants("generation.completed") and every.wants("generation.queued")
    some = read_endpoint("ep2", doc(eventTypes=["generation.failed"]), allow_private=False)
    assert some.wants("generation.failed") and not some.wants("generation.completed")
    assert read_endpoint("ep3", doc(eventTypes=[]), allow_private=False).wants("generation.queued")


def test_the_secret_never_appears_in_an_endpoints_repr() -> None:
    assert SECRET not in repr(read_endpoint("ep1", doc(), allow_private=False))


@pytest.mark.parametrize(
    "fields",
    [
        {"url": "http://hooks.example.com/x"},
        {"url": "not a url"},
        {"url": None},
        {"url": "https://10.0.0.1/x"},
        {"secret": None},
        {"secret": "hunter2"},
        {"secret": "whsec_not base64!"},
        {"secret": "whsec_" + base64.b64encode(b"short").decode()},
        {"secret": "whsec_" + base64.b64encode(b"k" * 80).decode()},
        {"secret": 12345},
        {"eventTypes": "generation.failed"},
        {"eventTypes": ["generation.done"]},
        {"eventTypes": [1]},
    ],
)
def test_malformed_endpoints_are_refused_without_naming_the_secret(fields: dict[str, Any]) -> None:
    with pytest.raises(EndpointRefused) as refused:
        read_endpoint("ep1", doc(**fields), allow_private=False)
    secret = fields.get("secret", SECRET)
    assert not isinstance(secret, str) or secret not in str(refused.value)


@pytest.mark.parametrize(
    ("document", "enabled"),
    [
        ({}, True),
        ({"disabled": False}, True),
        ({"disabled": True}, False),
        ({"disabled": "no"}, False),
    ],
)
def test_disabled_missing_means_enabled_and_anything_odd_fails_closed(
    document: dict[str, Any], enabled: bool
) -> None:
    assert is_enabled(document) is enabled


def test_a_svix_style_secret_passes() -> None:
    assert check_secret(SECRET) == SECRET
