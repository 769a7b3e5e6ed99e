"""What monitoring/ names before the branch that brings it is merged: a strict xfail marks it.

Issue 24 (``i24-log``) brings the four delivery-log functions of the webhooks API and their
CLI (issue 23's relay and attempt line are merged into this branch already). A test marked
``needs(branch)`` fails today for want of them; once the branch is merged it passes, which a
strict xfail reports as a failure, so the mark (and the name's entry here) must then go.
"""

from __future__ import annotations

import pytest

DELIVERY_LOG = "i24-log"
# Cloud Run services monitoring/ selects that the deploy does not create yet, by branch.
SERVICES = {
    "webhooks-list-events": DELIVERY_LOG,
    "webhooks-list-attempts": DELIVERY_LOG,
    "webhooks-recover": DELIVERY_LOG,
    "webhooks-resend": DELIVERY_LOG,
}


def needs(branch: str) -> pytest.MarkDecorator:
    """Fails until ``branch`` is merged; then fails as an unexpected pass: remove the mark."""
    return pytest.mark.xfail(
        strict=True, reason=f"needs {branch} merged; once it is, delete this mark"
    )
