"""Where the repository is, and the emulator project every test reads and writes."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_PROJECT = "diffio-progress-test"
# The database of webhook endpoints and their secrets (webhooks-api.md §5).
WEBHOOK_DATABASE = "webhooks"
# The local key that encrypts signing secrets at rest in the tests (webhooks-api.md §6): every
# test with ``db`` has it in its environment, so the functions it builds or serves do too.
LOCAL_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
