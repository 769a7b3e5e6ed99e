"""A tripwire: Python sockets dialling, or name lookups, beyond loopback are recorded and refused.

Webhook tests deliver to local receivers only. This proves it: while armed,
``socket.connect`` to anything outside 127.0.0.0/8 and ``getaddrinfo`` of any
name but ``localhost`` raise ``Tripped`` (a lookup is a packet to a resolver
that may be off the machine). Violations are also kept in ``TRIPPED``, so a
caller that swallows the exception still fails the test that armed it.
Subprocesses arm it through ``tests/tripwire_site/sitecustomize.py`` (put that
folder on PYTHONPATH). gRPC dials in C, outside Python's socket module; it only
ever talks to the emulator on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

TRIPPED: list[str] = []
_REAL_CONNECT = socket.socket.connect
_REAL_CONNECT_EX = socket.socket.connect_ex
_REAL_GETADDRINFO = socket.getaddrinfo
ALLOWED_NAMES = frozenset({"localhost"})


class Tripped(Exception):
    """Something tried to reach beyond loopback."""


def is_loopback_v4(host: object) -> bool:
    try:
        ip = ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip in ipaddress.ip_network("127.0.0.0/8")


def _trip(what: str) -> Tripped:
    TRIPPED.append(what)
    sys.stderr.write(f"TRIPWIRE: {what}\n")
    return Tripped(what)


def _check_address(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback_v4(address[0]):
        raise _trip(f"dial to {address[0]}:{address[1]}")


def _connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address)
    _REAL_CONNECT(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address)
    return _REAL_CONNECT_EX(self, address)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name not in ALLOWED_NAMES and not is_loopback_v4(name):
        try:
            ipaddress.ip_address(str(name))
        except ValueError:
            raise _trip(f"name lookup of {name}") from None
        raise _trip(f"lookup of non-loopback address {name}")
    return _REAL_GETADDRINFO(host, *args, **kwargs)


def arm() -> None:
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _getaddrinfo


def disarm() -> None:
    socket.socket.connect = _REAL_CONNECT  # type: ignore[method-assign]
    socket.socket.connect_ex = _REAL_CONNECT_EX  # type: ignore[method-assign]
    socket.getaddrinfo = _REAL_GETADDRINFO


@contextmanager
def armed() -> Iterator[None]:
    """Armed for the block; afterwards, fail if anything reached beyond loopback meanwhile."""
    TRIPPED.clear()
    arm()
    try:
        yield
    finally:
        disarm()
    assert TRIPPED == [], f"something reached beyond loopback: {TRIPPED}"
