"""A stand-in of the two Cloud KMS RPCs the secret box calls (REST), on 127.0.0.1.

``encrypt`` and ``decrypt`` of one symmetric key, with real AES-GCM and the
additional authenticated data bound as KMS binds it: a wrong AAD is KMS's 400
INVALID_ARGUMENT. Every call is recorded (path, JSON body).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class KmsStandIn:
    """``url`` serves ``POST /v1/{name}:encrypt`` and ``:decrypt`` for any key name."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls.append((path, body))
        name, _, method = path.removeprefix("/v1/").partition(":")
        aad = base64.b64decode(body.get("additionalAuthenticatedData", ""))
        if method == "encrypt":
            nonce = os.urandom(12)
            sealed = nonce + self._aead.encrypt(nonce, base64.b64decode(body["plaintext"]), aad)
            return 200, {"name": name + "/cryptoKeyVersions/1", "ciphertext": _b64(sealed)}
        if method == "decrypt":
            sealed = base64.b64decode(body["ciphertext"])
            try:
                plain = self._aead.decrypt(sealed[:12], sealed[12:], aad)
            except InvalidTag:
                error = {"code": 400, "message": "Decryption failed", "status": "INVALID_ARGUMENT"}
                return 400, {"error": error}
            return 200, {"plaintext": _b64(plain)}
        return 404, {"error": {"code": 404, "message": "no such method", "status": "NOT_FOUND"}}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _handler(standin: KmsStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            status, answer = standin.answer(self.path.split("?", 1)[0], body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
