"""Failed authentications, counted per client address and per real key id.

A moving window of one minute (the `limits` library, in memory: one server
process keeps its own count, and a restart forgets it: the count only turns a
failure's 401 into a 429, it never guards a secret). Past the limit, failing
requests get 429 with Retry-After instead of 401, and requests that carry no
well-formed token are refused before any work.

A token that verifies is never refused: behind a local TLS proxy every operator
shares one address, and anyone can fail on purpose, so a limit that refused
valid tokens would let any stranger lock every operator out. A token's secret is
256 random bits: refusing a right guess would protect nothing. Failures that name
a key id that exists (a wrong secret, a revoked token) also count against that
key id, wherever they come from; made-up key ids count against the address only,
so the counts' memory is bounded by addresses and real tokens, and every count
expires with its window.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class FailedAuthLimiter:
    def __init__(self, failures_per_minute: int) -> None:
        self._item = RateLimitItemPerMinute(failures_per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    @staticmethod
    def _buckets(client: str, key_id: str | None) -> list[str]:
        return [client] if key_id is None else [client, f"key {key_id}"]

    def _wait(self, bucket: str) -> int | None:
        if self._limiter.test(self._item, bucket):
            return None
        reset_at = self._limiter.get_window_stats(self._item, bucket).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def retry_after_s(self, client: str, key_id: str | None = None) -> int | None:
        """Seconds until failures from `client` (or naming the real `key_id`) are
        under the limit again, or None when they are now."""
        waits = [self._wait(bucket) for bucket in self._buckets(client, key_id)]
        return max((w for w in waits if w is not None), default=None)

    def failed(self, client: str, key_id: str | None = None) -> None:
        """Count a failure from `client`; `key_id` only when that key exists."""
        for bucket in self._buckets(client, key_id):
            self._limiter.hit(self._item, bucket)
