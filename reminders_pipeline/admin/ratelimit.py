"""Failed authentications per client: past the limit, a client gets 429 until its window frees.

A moving window of one minute (the `limits` library, in memory: one server process
keeps its own count). While a client is over the limit even a valid token is
refused, so guessing gains nothing from the answer.
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

    def retry_after_s(self, client: str) -> int | None:
        """Seconds until `client` may try again, or None when it may now."""
        if self._limiter.test(self._item, client):
            return None
        reset_at = self._limiter.get_window_stats(self._item, client).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def failed(self, client: str) -> None:
        self._limiter.hit(self._item, client)
