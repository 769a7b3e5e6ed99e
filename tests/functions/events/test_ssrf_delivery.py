"""SSRF at delivery time: host names are resolved and checked, and the checked address dialled."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from diffio_progress.core.endpoints import ENDPOINTS
from diffio_progress.core.events import QUEUED_EVENT
from diffio_progress.core.ssrf import parse_webhook_url
from diffio_progress.functions.events.pinned_post import (
    DeliveryError,
    DeliveryRefused,
    PinnedPoster,
)
from diffio_progress.functions.secret_box import LocalKey, SecretBox
from tests.functions.events.harness import Harness, Writes, new_secret
from tests.functions.events.receivers import Receiver
from tests.log_records import Records
from tests.project import LOCAL_KEY


class Resolver:
    """A DNS stand-in: names this test made up, answered without a packet, calls counted."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return self.answers[host]


def handler(harness: Harness, resolver: Any, allow: bool, **poster: Any) -> Any:
    return harness.handler(
        PinnedPoster(allow_private=allow, resolve=resolver, **poster),
        webhook_sink="direct",
        webhook_allow_private_urls=allow,
    )


@pytest.mark.parametrize(
    "addresses",
    [["127.0.0.1"], ["10.0.0.7"], ["169.254.169.254"], ["fd00:ec2::254"], ["8.8.8.8", "127.0.0.1"]],
)
def test_a_host_name_resolving_to_any_non_public_address_is_refused(
    writes: Writes,
    harness: Harness,
    receiver: Receiver,
    event_logs: Records,
    addresses: list[str],
) -> None:
    resolver = Resolver({"hooks.customer.test": addresses})
    url = receiver.url.replace("http://127.0.0.1", "https://hooks.customer.test")
    endpoint_id, _ = harness.endpoint(url)
    outcome = harness.send(handler(harness, resolver, allow=False), writes.generation())
    assert outcome.outcome == f"recorded {QUEUED_EVENT}"  # refused, not retried
    assert resolver.asked == ["hooks.customer.test"]
    assert receiver.received == []
    assert [r.fields["endpointId"] for r in event_logs.at("WARNING")] == [endpoint_id]


def test_localhost_through_the_system_resolver_is_refused(
    writes: Writes, harness: Harness, receiver: Receiver
) -> None:
    harness.endpoint(receiver.url.replace("http://127.0.0.1", "https://localhost"))
    poster = PinnedPoster(allow_private=False)
    handler = harness.handler(poster, webhook_sink="direct")
    assert harness.send(handler, writes.generation()).outcome == f"recorded {QUEUED_EVENT}"
    assert receiver.received == []


def test_allowed_private_urls_dial_the_address_that_was_resolved_once(
    writes: Writes, harness: Harness, receiver: Receiver
) -> None:
    # Nothing else knows this name (the tripwire refuses a real lookup): a delivery
    # that arrives went to the address the check saw, not to a second answer.
    resolver = Resolver({"hooks.local.test": ["127.0.0.1"]})
    harness.endpoint(receiver.url.replace("127.0.0.1", "hooks.local.test"))
    harness.send(handler(harness, resolver, allow=True), writes.generation())
    assert len(receiver.received) == 1
    assert receiver.received[0].headers["host"].startswith("hooks.local.test:")
    assert resolver.asked == ["hooks.local.test"]


def test_a_non_ascii_url_is_delivered_in_ascii_not_raised(
    writes: Writes, harness: Harness, receiver: Receiver
) -> None:
    # Stored before configure encoded URLs: the host in IDNA, the path percent-encoded.
    resolver = Resolver({"xn--hoks-6qa.local.test": ["127.0.0.1"]})
    harness.endpoint(receiver.url.replace("127.0.0.1", "hoöks.local.test") + "/ä?q=ü")
    harness.send(handler(harness, resolver, allow=True), writes.generation())
    [received] = receiver.received
    assert received.path == "/hooks/diffio/%C3%A4?q=%C3%BC"
    assert received.headers["host"].startswith("xn--hoks-6qa.local.test:")


def test_a_name_that_does_not_resolve_is_a_failed_delivery(
    writes: Writes, harness: Harness
) -> None:
    def nowhere(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    harness.endpoint("https://gone.customer.test/hook")
    harness.send(handler(harness, nowhere, allow=False), writes.generation())
    assert "does not resolve" in harness.attempt_errors()  # scheduled, not skipped


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_receiver(ca: trustme.CA) -> Iterator[Receiver]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hooks.secure.test").configure_cert(context)
    started = Receiver(tls=context, host="hooks.secure.test")
    yield started
    started.stop()


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_https_to_a_pinned_address_still_verifies_the_certificate_for_the_host_name(
    ca: trustme.CA, tls_receiver: Receiver
) -> None:
    resolver = Resolver({"hooks.secure.test": ["127.0.0.1"], "wrong.secure.test": ["127.0.0.1"]})
    poster = PinnedPoster(allow_private=True, resolve=resolver, ssl_context=client_context(ca))
    url = parse_webhook_url(tls_receiver.url, allow_private=True)
    assert poster.post(url, b"{}", {"content-type": "application/json"}) == 204
    assert len(tls_receiver.received) == 1
    # The same address under a name the certificate does not carry: refused by TLS.
    wrong = parse_webhook_url(tls_receiver.url.replace("hooks.", "wrong."), allow_private=True)
    with pytest.raises(DeliveryError):
        poster.post(wrong, b"{}", {})
    assert len(tls_receiver.received) == 1


def test_the_poster_refuses_before_dialling(tls_receiver: Receiver) -> None:
    resolver = Resolver({"hooks.secure.test": ["127.0.0.1"]})
    poster = PinnedPoster(allow_private=False, resolve=resolver)
    url = parse_webhook_url(tls_receiver.url, allow_private=False)
    with pytest.raises(DeliveryRefused):
        poster.post(url, b"{}", {})
    assert tls_receiver.received == []


UNOPENED = "the signing secret cannot be decrypted"


def test_a_secret_that_does_not_open_is_a_failed_attempt_of_ours_with_one_error_line(
    writes: Writes, harness: Harness, receiver: Receiver, event_logs: Records
) -> None:
    endpoint_id, _ = harness.endpoint(receiver.url)
    # A ciphertext sealed for another endpoint: its associated data does not match.
    sealed = SecretBox(LocalKey.from_base64(LOCAL_KEY)).seal("ep_elsewhere", new_secret())
    harness.webhooks_db.document(ENDPOINTS, endpoint_id).update({"secret": sealed})
    harness.send(handler(harness, Resolver({}), allow=True), writes.generation())
    assert receiver.received == []
    # Recorded, never a failed call: the attempt failed on our side and is scheduled again.
    assert harness.attempt_errors() == UNOPENED
    delivery = harness.event_doc(QUEUED_EVENT)["deliveries"][endpoint_id]
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)
    [why] = event_logs.at("ERROR")
    assert why.fields == {"endpointId": endpoint_id, "failureKind": "ours"}
    assert UNOPENED not in why.getMessage() and "signing secret unavailable" in why.getMessage()
