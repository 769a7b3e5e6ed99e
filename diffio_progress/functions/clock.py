"""The wall clock every function reads (the pure core is handed ``now`` instead)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, timezone-aware in UTC: what Firestore timestamps compare against."""
    return datetime.now(UTC)
