"""Standard Webhooks signatures (https://www.standardwebhooks.com), by the `standardwebhooks`
library, so every receiver verifies with its own language's library, not hand-written code.

Headers: `webhook-id` (the delivery's idempotency key: the same on every retry),
`webhook-timestamp` (unix seconds) and `webhook-signature`: `v1,<base64 HMAC-SHA256 of
"<id>.<timestamp>.<raw body>">`, one per configured secret, space-separated, so a secret
can be rotated without a gap (sign with old and new, move the receivers, drop the old).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


class Signer:
    """Signs with each of the secrets (whsec_ form, already validated by the setting)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("at least one webhook secret is needed")
        self._webhooks = [Webhook(secret) for secret in secrets]

    def headers(self, message_id: str, body: bytes, now: datetime | None = None) -> dict[str, str]:
        timestamp = (now or datetime.now(UTC)).replace(microsecond=0)
        signatures = " ".join(w.sign(message_id, timestamp, body) for w in self._webhooks)
        return {
            ID_HEADER: message_id,
            TIMESTAMP_HEADER: str(int(timestamp.timestamp())),
            SIGNATURE_HEADER: signatures,
        }
