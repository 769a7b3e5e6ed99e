"""What monitoring/ names before the branch that brings it is merged: a strict xfail marks it.

Issue 23 (``i23-relay``) brings the relay function and the one log line per delivery attempt;
issue 24 (``i24-log``) the four delivery-log functions of the webhooks API. A test marked
``needs(branch)`` fails today for want of them; once the branch is merged it passes, which a
strict xfail reports as a failure, so the mark (and the name's entry here) must then go.
"""

from __future__ import annotations

import pytest

RELAY = "i23-relay"
DELIVERY_LOG = "i24-log"
# Cloud Run services monitoring/ selects that the deploy does not create yet, by branch.
SERVICES = {
    "relay-pending-deliveries": RELAY,
    "webhooks-list-events": DELIVERY_LOG,
    "webhooks-list-attempts": DELIVERY_LOG,
    "webhooks-recover": DELIVERY_LOG,
    "webhooks-resend": DELIVERY_LOG,
}
# Log metrics over the attempt line (docs/delivery-contract.md §6), which no function writes yet.
ATTEMPT_METRICS = {"events_delivered", "deliveries_failed", "delivery_attempts_failed"}


def needs(branch: str) -> pytest.MarkDecorator:
    """Fails until ``branch`` is merged; then fails as an unexpected pass: remove the mark."""
    return pytest.mark.xfail(
        strict=True, reason=f"needs {branch} merged; once it is, delete this mark"
    )
