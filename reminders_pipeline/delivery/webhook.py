"""The webhook channel: a signed JSON POST per reminder (httpx), with an Idempotency-Key.

X-Reminders-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">, so a
receiver can check the body and refuse replays (README: verifying a webhook).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from email.utils import parsedate_to_datetime

import httpx

from reminders_pipeline.delivery.reminder import Reminder, SendFailed

WEBHOOK = "webhook"
SIGNATURE_HEADER = "X-Reminders-Signature"
# Statuses a retry may fix; any other 4xx is the receiver refusing this reminder.
RETRYABLE = {408, 409, 425, 429}
# The start of the answer kept as provider_response; the rest is not read.
ANSWER_KEPT = 200


def signature(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


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


class WebhookSender:
    channel = WEBHOOK

    def __init__(self, url: str, secret: str, *, concurrency: int = 16) -> None:
        self.url, self.secret = url, secret
        # One pool for the channel's threads; no transport retries: a send is one attempt.
        self.client = httpx.Client(
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"User-Agent": "reminders-pipeline"},
        )

    def send(self, reminder: Reminder, timeout_s: float) -> str:
        body = json.dumps(reminder.as_json(), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": reminder.idempotency_key,
            SIGNATURE_HEADER: signature(self.secret, body, int(time.time())),
        }
        # httpx's timeouts are per network step: a receiver trickling its answer would
        # outlast them. The answer is streamed and the whole send has a hard deadline.
        deadline = time.monotonic() + timeout_s
        try:
            with self.client.stream(
                "POST", self.url, content=body, headers=headers, timeout=httpx.Timeout(timeout_s)
            ) as response:
                head = b""
                for chunk in response.iter_bytes():
                    head += chunk
                    if len(head) >= ANSWER_KEPT:
                        break
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("the answer did not end in time")
        except httpx.TimeoutException as exc:
            raise SendFailed(
                f"webhook timed out after {timeout_s:g}s ({type(exc).__name__})"
            ) from None
        except httpx.HTTPError as exc:
            raise SendFailed(f"webhook: {type(exc).__name__}: {exc}") from None
        text = head[:ANSWER_KEPT].decode(errors="replace")
        answer = f"HTTP {response.status_code} {text}".strip()
        if response.is_success:
            return answer
        status = response.status_code
        raise SendFailed(
            f"webhook answered {answer}",
            permanent=400 <= status < 500 and status not in RETRYABLE,
            retry_after_s=retry_after_s(response.headers.get("Retry-After")),
        )

    def close(self) -> None:
        self.client.close()
