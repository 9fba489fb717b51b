"""The webhook channel: a signed JSON POST per reminder (httpx), with an Idempotency-Key.

Signed per Standard Webhooks (https://www.standardwebhooks.com) with its
`standardwebhooks` library, so a receiver verifies the body and refuses replays with the
library of its language (README: verifying a webhook): `webhook-id` (the delivery's
idempotency key: the same on every retry), `webhook-timestamp` (unix seconds) and
`webhook-signature`: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<raw body>">`, one per
configured secret, space-separated, so a secret can be rotated without a gap (sign with
old and new, move the receivers, drop the old).

httpx's timeouts bound each network step, so a receiver trickling its status line,
headers or body a byte at a time would outlast them. Each send therefore runs on the
sender's event loop (one thread, one connection pool) inside asyncio.timeout: the
whole send (name resolution, connect, TLS, request, answer) is cancelled at its
deadline, and the calling thread stops waiting SEND_MARGIN_S later whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from standardwebhooks.webhooks import Webhook

from reminders_pipeline.delivery.reminder import Reminder, SendFailed
from reminders_pipeline.settings.delivery_lease import SEND_MARGIN_S

# Statuses a retry may fix; any other 4xx is the receiver refusing this reminder.
RETRYABLE = {408, 409, 425, 429}
# The start of the answer kept as provider_response; the rest is not read.
ANSWER_KEPT = 200


def retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), None when absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class Signer:
    """Signs with each of the secrets (whsec_ form, already validated by the setting)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("at least one webhook secret is needed")
        self._webhooks = [Webhook(secret) for secret in secrets]

    def headers(self, message_id: str, body: bytes) -> dict[str, str]:
        timestamp = datetime.now(UTC).replace(microsecond=0)
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": " ".join(
                w.sign(message_id, timestamp, body) for w in self._webhooks
            ),
        }


class WebhookSender:
    channel = "webhook"

    def __init__(self, url: str, secrets: str | Sequence[str], *, concurrency: int = 16) -> None:
        """secrets: whsec_ secrets (REMINDERS_WEBHOOK_SECRET), each signature in the header."""
        self.url = url
        self.signer = Signer([secrets] if isinstance(secrets, str) else secrets)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="webhook-loop", daemon=True
        )
        self._thread.start()
        # One pool for the channel's threads; no transport retries: a send is one attempt.
        # Redirects are not followed (a 3xx is a failure to retry).
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"User-Agent": "reminders-pipeline"},
            follow_redirects=False,
        )

    def send(self, reminder: Reminder, timeout_s: float) -> str:
        body = json.dumps(reminder.as_json(), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": reminder.idempotency_key,
            **self.signer.headers(reminder.idempotency_key, body),
        }
        future = asyncio.run_coroutine_threadsafe(self._post(body, headers, timeout_s), self.loop)
        try:
            status, retry_after, head = future.result(timeout_s + SEND_MARGIN_S)
        except TimeoutError as exc:  # asyncio.timeout's, or the wait's (a stuck loop)
            future.cancel()
            raise SendFailed(
                f"webhook timed out after {timeout_s:g}s (the whole send's deadline: "
                f"{type(exc).__name__})"
            ) from None
        except httpx.TimeoutException as exc:
            raise SendFailed(
                f"webhook timed out after {timeout_s:g}s ({type(exc).__name__})"
            ) from None
        except httpx.HTTPError as exc:
            raise SendFailed(f"webhook: {type(exc).__name__}: {exc}") from None
        text = head[:ANSWER_KEPT].decode(errors="replace")
        answer = f"HTTP {status} {text}".strip()
        if 200 <= status < 300:
            return answer
        raise SendFailed(
            f"webhook answered {answer}",
            permanent=400 <= status < 500 and status not in RETRYABLE,
            retry_after_s=retry_after_s(retry_after),
        )

    async def _post(
        self, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> tuple[int, str | None, bytes]:
        """Status, Retry-After and the answer's start; the whole of it within timeout_s."""
        async with asyncio.timeout(timeout_s):
            async with self.client.stream(
                "POST", self.url, content=body, headers=headers, timeout=httpx.Timeout(timeout_s)
            ) as response:
                head = b""
                async for chunk in response.aiter_bytes():
                    head += chunk
                    if len(head) >= ANSWER_KEPT:
                        break  # the rest is not read: the connection is dropped
                return response.status_code, response.headers.get("Retry-After"), head

    def close(self) -> None:
        if self.loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(self.client.aclose(), self.loop).result(5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()
