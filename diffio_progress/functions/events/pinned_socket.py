"""The pinned POST's socket: dialled to the checked address, shut down at the deadline."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

import httpcore


class Watchdog:
    """Shuts the connection down at the deadline, whatever call is blocked on it.

    It holds a duplicate of the socket's descriptor, so the shutdown reaches
    the connection even after TLS wraps the socket, and can never hit a
    descriptor number that the system has meanwhile given to another socket.
    """

    def __init__(self, deadline: float) -> None:
        self.fired = False
        self._lock = threading.Lock()
        self._done = False
        self._socket: socket.socket | None = None
        self._timer = threading.Timer(max(deadline - time.monotonic(), 0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if not self._done:
                self._socket = sock.dup()
        if self.fired:
            self._fire()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            if self._socket is not None:
                try:
                    self._socket.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed by the peer

    def stop(self) -> None:
        with self._lock:
            self._done = True
            self._timer.cancel()
            if self._socket is not None:
                self._socket.close()
                self._socket = None


class PinnedBackend(httpcore.NetworkBackend):
    """httpcore's own socket backend, except that it dials the checked address."""

    def __init__(self, address: str, watchdog: Watchdog) -> None:
        self._address = address
        self._watchdog = watchdog
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            self._address, port, timeout, local_address, socket_options
        )
        self._watchdog.watch(stream.get_extra_info("socket"))
        return stream

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
