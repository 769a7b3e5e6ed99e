"""Which webhook URLs and addresses this project may POST to: the SSRF rules, pure.

A direct-sink endpoint's URL is written by a customer, so it may point at our
own network: loopback, private ranges, link-local, or the metadata server that
hands out the function's credentials. Only ``https`` to public addresses is
allowed, unless the local world lifts both rules (WEBHOOK_ALLOW_PRIVATE_URLS).
A URL is ASCII on the wire (webhooks-api.md §6): a non-ASCII host is IDNA-encoded
(IDNA 2008 with UTS 46 mapping) or refused, a non-ASCII path or query percent-encoded.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

import idna

# The metadata servers (GCE/Cloud Run, and the AWS-style IPv6 one): named so a
# reader sees them refused, though link-local and private ranges cover them too.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
MAX_URL_CHARS = 2048


class UrlRefused(ValueError):
    """A webhook URL that can never be delivered to (malformed, or refused by a rule)."""


@dataclass(frozen=True)
class WebhookUrl:
    """A parsed webhook URL: what to resolve and where to connect."""

    text: str
    scheme: str
    host: str
    port: int


def is_public_address(address: str) -> bool:
    """True only for a globally routable unicast address.

    Refused: loopback, private (RFC 1918, unique local), shared (CGNAT),
    link-local (the metadata server among them), unspecified, reserved,
    multicast, documentation ranges, and IPv4 hidden in IPv6 forms that
    would reach one of those.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    if ip in METADATA_ADDRESSES:
        return False
    return ip.is_global and not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        # The deprecated IPv6 site-local range fec0::/10, which the standard library counts
        # as global (webhooks-api.md §6).
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    )


def parse_webhook_url(url: object, allow_private: bool) -> WebhookUrl:
    """A URL the direct sink may use, or ``UrlRefused`` saying why not.

    Only the form is checked here; the host's addresses are checked when it is
    resolved, at delivery time (``is_public_address``).
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise UrlRefused("url is missing or not a string")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise UrlRefused("url contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("url does not parse") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_private else ("https",)
    if scheme not in allowed:
        raise UrlRefused(f"url scheme {scheme or '(none)'} is not allowed; use https")
    if not parts.hostname:
        raise UrlRefused("url has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("url must not carry credentials")
    host = parts.hostname
    if not url.isascii():
        host = _ascii_host(host)
        url = _ascii_url(parts, host)
    if _is_ip_literal(host) and not allow_private and not is_public_address(host):
        raise UrlRefused("url host is not a public address")
    return WebhookUrl(url, scheme, host, port or (443 if scheme == "https" else 80))


def _ascii_host(host: str) -> str:
    """``host`` as IDNA A-labels (UTS 46 maps full-width forms, so ``１２７.０.０.１`` is
    ``127.0.0.1`` and meets the address rules after this); ``UrlRefused`` if it has none."""
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        raise UrlRefused("url host is not a valid internationalized domain name") from None


def _ascii_url(parts: SplitResult, host: str) -> str:
    """The URL with ``host`` and every non-ASCII character of the rest percent-encoded."""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    try:
        path, query, fragment = (_percent(p) for p in (parts.path, parts.query, parts.fragment))
    except UnicodeError:  # a lone surrogate, which a JSON \u escape can carry
        raise UrlRefused("url is not valid Unicode") from None
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def _percent(text: str) -> str:
    """Non-ASCII characters as their UTF-8 bytes, percent-encoded; ASCII is kept as written."""
    return "".join(c if c.isascii() else quote(c, safe="", errors="strict") for c in text)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True
