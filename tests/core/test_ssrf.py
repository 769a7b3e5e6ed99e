"""The SSRF rules, decided on addresses and URLs directly (no lookup, no packet)."""

from __future__ import annotations

import pytest

from diffio_progress.core.ssrf import UrlRefused, is_public_address, parse_webhook_url

REFUSED = [
    "127.0.0.1",  # loopback
    "127.1.2.3",
    "::1",
    "10.0.0.1",  # private
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",  # shared (carrier-grade NAT)
    "169.254.169.254",  # the metadata server (link-local)
    "169.254.1.1",
    "fd00:ec2::254",  # the IPv6 metadata server (unique local)
    "fc00::1",
    "fe80::1",  # link-local
    "fe80::1%eth0",
    "fec0::1",  # the deprecated site-local range, which ipaddress counts as global
    "feff:ffff::1",
    "0.0.0.0",  # unspecified
    "::",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "224.0.0.1",  # multicast
    "ff02::1",
    "192.0.2.10",  # documentation
    "2001:db8::1",
    "::ffff:127.0.0.1",  # IPv4 in IPv6 forms
    "::ffff:169.254.169.254",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "not-an-address",
    "",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "34.120.1.2", "2606:4700:4700::1111", "2a00:1450:4001:82b::200e"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert is_public_address(address) is False


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public_address(address) is True


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("https://hooks.example.com/diffio", "hooks.example.com", 443),
        ("https://hooks.example.com:8443/a?b=c", "hooks.example.com", 8443),
        ("HTTPS://Hooks.Example.com/", "hooks.example.com", 443),
        ("https://8.8.8.8/x", "8.8.8.8", 443),
        ("https://[2606:4700:4700::1111]/x", "2606:4700:4700::1111", 443),
    ],
)
def test_https_urls_parse(url: str, host: str, port: int) -> None:
    parsed = parse_webhook_url(url, allow_private=False)
    assert (parsed.scheme, parsed.host, parsed.port, parsed.text) == ("https", host, port, url)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/",  # https only
        "ftp://hooks.example.com/",
        "hooks.example.com/path",
        "https:///path",
        "https://user:pass@hooks.example.com/",
        "https://hooks.example.com:99999/",
        "https://hooks example.com/",
        "https://hooks.example.com/\n",
        "https://127.0.0.1/",  # an address literal is judged at once
        "https://[::1]:8443/",
        "https://169.254.169.254/computeMetadata/v1/",
        "https://[fd00:ec2::254]/",
        "",
        None,
        42,
        "https://" + "a" * 2100 + ".com/",
    ],
)
def test_malformed_http_and_private_literal_urls_are_refused(url: object) -> None:
    with pytest.raises(UrlRefused):
        parse_webhook_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/hook", "http://localhost:9000/", "https://10.1.2.3/"]
)
def test_allowing_private_urls_lifts_both_rules(url: str) -> None:
    with pytest.raises(UrlRefused):
        parse_webhook_url(url, allow_private=False)
    assert parse_webhook_url(url, allow_private=True).text == url


def test_allowing_private_urls_still_refuses_malformed_ones() -> None:
    for url in ("ftp://127.0.0.1/", "http://", "http://u:p@127.0.0.1/"):
        with pytest.raises(UrlRefused):
            parse_webhook_url(url, allow_private=True)


@pytest.mark.parametrize(
    ("url", "text", "host"),
    [
        (
            "https://exämple.com/ä?q=ü",
            "https://xn--exmple-cua.com/%C3%A4?q=%C3%BC",
            "xn--exmple-cua.com",
        ),
        ("https://bücher.example:8443/x", "https://xn--bcher-kva.example:8443/x", None),
        ("https://hooks.example.com/päth#frag", "https://hooks.example.com/p%C3%A4th#frag", None),
        ("https://ＨＯＯＫＳ.example.com/", "https://hooks.example.com/", "hooks.example.com"),
    ],
)
def test_non_ascii_urls_are_ascii_on_the_wire(url: str, text: str, host: str | None) -> None:
    parsed = parse_webhook_url(url, allow_private=False)
    assert parsed.text == text and parsed.text.isascii()
    assert parsed.host == (host or parsed.host) and parsed.host.isascii()


@pytest.mark.parametrize(
    "url",
    [
        "https://☃.net/",  # not allowed in IDNA 2008
        "https://xn--zz.bücher.com/",  # a broken A-label beside a U-label
        "https://a..é.com/",
        "https://" + "é" * 70 + ".com/",  # a label over 63 octets
        "https://\udc80.com/",
        "https://ok.example.com/\udc80",  # a lone surrogate, as a JSON escape can carry
        "https://１２７.０.０.１/",  # full-width digits map to 127.0.0.1: judged as that address
    ],
)
def test_non_ascii_urls_that_cannot_be_encoded_or_map_to_private_hosts_are_refused(
    url: str,
) -> None:
    with pytest.raises(UrlRefused):
        parse_webhook_url(url, allow_private=False)
