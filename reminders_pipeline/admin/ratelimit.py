"""Failed authentications per client: past the limit, a client gets 429 until its window frees.

A moving window of one minute (the `limits` library, in memory: one server process
keeps its own count). While a client is over the limit even a valid token is
refused, so guessing gains nothing from the answer.

On one host every local client has the same address, so a count per address alone
would let any local process lock every operator out. A key id that has
authenticated on this server is therefore counted on its own: a request naming it
is refused only after failures that named it, from that address. Failures naming
anything else (unknown key ids, malformed tokens) count against the address.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class FailedAuthLimiter:
    KNOWN_KEYS_MAX = 10_000

    def __init__(self, failures_per_minute: int) -> None:
        self._item = RateLimitItemPerMinute(failures_per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._known: OrderedDict[str, None] = OrderedDict()

    def bucket(self, client: str, key_id: str | None) -> str:
        """Where a request's failures are counted, and its wait is looked up."""
        if key_id is not None and key_id in self._known:
            return f"{client} key {key_id}"
        return client

    def authenticated(self, key_id: str) -> None:
        self._known[key_id] = None
        self._known.move_to_end(key_id)
        if len(self._known) > self.KNOWN_KEYS_MAX:
            self._known.popitem(last=False)

    def retry_after_s(self, bucket: str) -> int | None:
        """Seconds until requests counted in `bucket` may try again, or None when they may now."""
        if self._limiter.test(self._item, bucket):
            return None
        reset_at = self._limiter.get_window_stats(self._item, bucket).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def failed(self, client: str, key_id: str | None = None) -> None:
        self._limiter.hit(self._item, client)
        if key_id is not None:
            self._limiter.hit(self._item, f"{client} key {key_id}")
