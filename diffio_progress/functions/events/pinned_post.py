"""One webhook POST: the host resolved and checked now, that address dialled, one hard deadline.

SSRF: every address the host resolves to must be public (unless private URLs
are allowed), and the connection goes to the address that was checked, so a
DNS answer that changes between the check and the dial (rebinding) cannot send
it elsewhere; TLS still verifies the certificate for the URL's host name.
Deadline: one per delivery, covering the lookup, the connection and the answer.
The lookup runs on a thread of its own (getaddrinfo cannot be cancelled or given
a timeout), so a host whose DNS hangs delays nobody else's lookup, and the
caller stops waiting at the deadline. A watchdog shuts the socket down when
the time is up, so a receiver that trickles bytes (even during the TLS
handshake) cannot extend it. Redirects are never followed (httpcore does not
follow them).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import httpcore

from diffio_progress.core.ssrf import WebhookUrl, is_public_address

from .pinned_socket import PinnedBackend, Watchdog

DEFAULT_DEADLINE_SECONDS = 10.0

Resolver = Callable[[str, int], list[str]]


class DeliveryRefused(Exception):
    """The URL may not be delivered to (SSRF rules): skipped, never retried."""


# What an attempt keeps of an answer's body (delivery-contract.md §4).
RESPONSE_CHARS = 1024


@dataclass(frozen=True)
class Answer:
    """A receiver's answer: its status, its ``Retry-After``, the start of its body."""

    status: int
    retry_after: str | None = None
    response: str | None = None


class DeliveryError(Exception):
    """The delivery failed (no answer, an error, a non-2xx status): retried later.

    ``status`` is the receiver's HTTP status when it answered one, ``answer`` the answer.
    """

    def __init__(self, message: str, status: int | None = None, answer: Answer | None = None):
        super().__init__(message)
        self.status = status
        self.answer = answer


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class LookupBusy(DeliveryError):
    """Too many lookups in flight (of all hosts, or of this one): ours to retry, not the URL's."""


# Lookups still running in this process (a hung one ends with the system resolver's own
# timeouts); beyond this many, a new lookup fails at once and its delivery is retried.
MAX_LOOKUPS_IN_FLIGHT = 256
# Of them, at most this many of one host name: one tenant's hanging DNS cannot fill them all.
MAX_LOOKUPS_PER_HOST = 16
_lookups = threading.BoundedSemaphore(MAX_LOOKUPS_IN_FLIGHT)
_per_host: dict[str, int] = {}
_per_host_lock = threading.Lock()


def _take_lookup(host: str) -> None:
    """One lookup of ``host`` in flight, or ``LookupBusy`` if over either cap."""
    with _per_host_lock:
        if _per_host.get(host, 0) >= MAX_LOOKUPS_PER_HOST:
            raise LookupBusy(f"too many DNS lookups of {host} in flight")
        if not _lookups.acquire(blocking=False):
            raise LookupBusy("too many DNS lookups in flight")
        _per_host[host] = _per_host.get(host, 0) + 1


def _give_lookup(host: str) -> None:
    with _per_host_lock:
        left = _per_host.pop(host) - 1
        if left:
            _per_host[host] = left
        _lookups.release()


def resolve_within(resolve: Resolver, host: str, port: int, deadline: float) -> list[str]:
    """``resolve(host, port)`` on a thread of its own, waited for until ``deadline`` at most.

    Raises ``TimeoutError`` at the deadline (the lookup finishes unobserved),
    ``LookupBusy`` when too many lookups (of all hosts, or of ``host``) are in
    flight, and ``OSError`` when it fails.
    """
    host = host.lower()
    _take_lookup(host)
    answer: Future[list[str]] = Future()

    def run() -> None:
        try:
            answer.set_result(resolve(host, port))
        except BaseException as error:
            answer.set_exception(error)
        finally:
            _give_lookup(host)

    threading.Thread(target=run, name="webhook-dns", daemon=True).start()
    try:
        return answer.result(timeout=max(deadline - time.monotonic(), 0.001))
    except FutureTimeout:
        raise TimeoutError(f"{host} did not resolve in time") from None


@dataclass
class PinnedPoster:
    """POSTs webhook bodies under the SSRF rules and a per-delivery deadline."""

    allow_private: bool = False
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    resolve: Resolver = system_resolver
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)

    def post(
        self,
        url: WebhookUrl,
        body: bytes,
        headers: Mapping[str, str],
        deadline: float | None = None,
    ) -> int:
        """The receiver's status code; ``DeliveryRefused`` or ``DeliveryError`` otherwise."""
        return self.answer(url, body, headers, deadline).status

    def answer(
        self,
        url: WebhookUrl,
        body: bytes,
        headers: Mapping[str, str],
        deadline: float | None = None,
    ) -> Answer:
        """The receiver's 2xx answer; ``DeliveryRefused`` or ``DeliveryError`` otherwise.

        ``deadline`` (``time.monotonic()``) defaults to ``deadline_seconds`` from now.
        """
        if deadline is None:
            deadline = time.monotonic() + self.deadline_seconds
        if deadline <= time.monotonic():
            raise DeliveryError("the call's delivery deadline has passed")
        allowed = deadline - time.monotonic()
        address = self._checked_address(url, deadline)
        watchdog = Watchdog(deadline)
        backend = PinnedBackend(address, watchdog)
        left = max(deadline - time.monotonic(), 0.001)
        timeouts = {"connect": left, "read": left, "write": left, "pool": left}
        try:
            with httpcore.ConnectionPool(
                ssl_context=self.ssl_context, network_backend=backend, max_connections=1
            ) as pool:
                with pool.stream(
                    "POST",
                    url.text,
                    headers=list(headers.items()),
                    content=body,
                    extensions={"timeout": timeouts},
                ) as response:
                    status = int(response.status)
                    answer = Answer(status, _header(response, b"retry-after"), _start(response))
        except httpcore.TimeoutException:
            # Every timeout is what is left of the deadline: whichever of it and the
            # watchdog comes first, the deadline has passed.
            raise self._no_answer(allowed) from None
        except (httpcore.NetworkError, httpcore.ProtocolError) as e:
            if watchdog.fired:
                raise self._no_answer(allowed) from None
            raise DeliveryError(f"{type(e).__name__} talking to {url.host}") from None
        except (OSError, ssl.SSLError) as error:
            raise DeliveryError(f"{type(error).__name__} talking to {url.host}") from None
        finally:
            watchdog.stop()
        if watchdog.fired:
            raise self._no_answer(allowed)
        if not 200 <= status < 300:
            raise DeliveryError(f"answered HTTP {status}", status, answer)
        return answer

    def _no_answer(self, allowed: float) -> DeliveryError:
        """The delivery's deadline passed: its own, or the shorter rest of the call's."""
        if allowed < self.deadline_seconds - 0.05:
            return DeliveryError(
                f"no answer within {allowed:.1f} s, the rest of the call's deadline"
            )
        return DeliveryError(f"no answer within {self.deadline_seconds:g} s")

    def check(self, url: WebhookUrl, deadline: float | None = None) -> str:
        """Resolve ``url``'s host now and apply the SSRF rules, without connecting.

        Returns the address a delivery would dial; raises ``DeliveryRefused`` (a
        refused address) or ``DeliveryError`` (no answer by ``deadline``, a
        ``time.monotonic()`` value; ``deadline_seconds`` from now by default).
        """
        if deadline is None:
            deadline = time.monotonic() + self.deadline_seconds
        return self._checked_address(url, deadline)

    def _checked_address(self, url: WebhookUrl, deadline: float) -> str:
        try:
            addresses = resolve_within(self.resolve, url.host, url.port, deadline)
        except TimeoutError:
            raise DeliveryError(f"{url.host} did not resolve in time") from None
        except OSError:
            raise DeliveryError(f"{url.host} does not resolve") from None
        if not addresses:
            raise DeliveryError(f"{url.host} does not resolve")
        if not self.allow_private:
            refused = [a for a in addresses if not is_public_address(a)]
            if refused:
                raise DeliveryRefused(f"{url.host} resolves to a non-public address")
        return addresses[0]


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1")[:200]
    return None


def _start(response: httpcore.Response) -> str | None:
    """The first ``RESPONSE_CHARS`` characters of the body; the rest is never read."""
    taken = b""
    for chunk in response.iter_stream():
        taken += chunk
        if len(taken) >= RESPONSE_CHARS * 4:
            break
    return taken.decode("utf-8", "replace")[:RESPONSE_CHARS] if taken else None
