"""Which strings can be Firestore document ids (so may be joined into a path)."""

from __future__ import annotations

import re

MAX_ID_BYTES = 1500

# C0 and C1 control characters, plus DEL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_RESERVED = re.compile(r"^__.*__$", re.DOTALL)


def is_document_id(value: object) -> bool:
    """True when ``value`` can name a Firestore document.

    Firestore forbids ``/``, ``.``/``..``, ``__…__`` and ids over 1,500 bytes;
    we also refuse control characters and strings that are not valid UTF-8
    (lone surrogates from ``"\\ud800"`` in JSON), which the client library
    would fail to encode. Anything refused here is never joined into a path,
    so ``gen-1/jobs/inference`` can never address another document.
    """
    if not isinstance(value, str) or value in ("", ".", ".."):
        return False
    if "/" in value or _CONTROL.search(value) or _RESERVED.match(value):
        return False
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return len(encoded) <= MAX_ID_BYTES


def is_queryable_value(value: str) -> bool:
    """True when Firestore can compare a field with ``value``: valid UTF-8, at most 1,500 bytes.

    Firestore refuses larger values in a query, and the client cannot encode lone
    surrogates; no stored id is either, so a caller treats them as "not found".
    """
    try:
        return len(value.encode("utf-8")) <= MAX_ID_BYTES
    except UnicodeEncodeError:
        return False
