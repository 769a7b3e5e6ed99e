"""Where the repository is, and the emulator project every test reads and writes."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_PROJECT = "diffio-progress-test"
# The database of webhook endpoints and their secrets (webhooks-api.md §5).
WEBHOOK_DATABASE = "webhooks"
