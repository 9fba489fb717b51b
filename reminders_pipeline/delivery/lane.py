"""A lane: one channel's sending for one drain, on its own database session.

It keeps the channel's threads busy: it leases as many deliveries as threads are free
(SKIP LOCKED, one committed statement that counts the attempt, writes a fresh lease
token and moves next_attempt_at to the lease's end), starts their sends at once, and
records the outcomes as they come, fenced by each claim's token (a late outcome
changes nothing and is logged). No transaction is open during a send, and every send
ends by its deadline, well inside the lease (settings/delivery_lease.py).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

import backoff

from reminders_pipeline.db.connector import Database, Session
from reminders_pipeline.delivery.config import DeliveryConfig
from reminders_pipeline.delivery.reminder import Reminder, Sender, SendFailed
from reminders_pipeline.settings.delivery_lease import LEASE_MARGIN_S

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_S = 24 * 60 * 60
OUTCOMES = ("sent", "retry", "dead", "cancelled")
Flying = dict[Future[str | SendFailed | None], tuple[Reminder, str, int]]


def retry_delay_s(attempt: int, base_s: float, retry_after_s: float | None = None) -> float:
    """Exponential backoff with full jitter for the attempt-th failure; a server's
    Retry-After, when longer, wins."""
    ladder = backoff.expo(base=2, factor=base_s, max_value=MAX_RETRY_DELAY_S)
    next(ladder)  # the generator's priming step
    delay = next(islice(ladder, max(attempt - 1, 0), None))
    jittered = max(1.0, backoff.full_jitter(delay))
    return min(max(jittered, retry_after_s or 0.0), MAX_RETRY_DELAY_S)


@dataclass
class DrainReport:
    """What one drain did, per channel; problems: channels left waiting, and why;
    late: outcomes that came after their lease was lost (not recorded). The lanes
    add to it from their threads, under its lock."""

    expanded: int = 0
    late: int = 0
    channels: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, channel: str, counts: dict[str, int], late: int = 0) -> None:
        with self.lock:
            mine = self.channels.setdefault(channel, dict.fromkeys(OUTCOMES, 0))
            for outcome, n in counts.items():
                mine[outcome] += n
            self.late += late

    def totals(self) -> dict[str, int]:
        return {o: sum(c[o] for c in self.channels.values()) for o in OUTCOMES}


def _storable(text: str) -> str:
    """PostgreSQL text refuses NUL: a provider's answer or error keeps the rest."""
    return text.replace("\x00", "")


def _late(reminder: Reminder, what: str, detail: str) -> int:
    """Log an outcome that came after its lease was lost; 1 (counted as late)."""
    log.warning(
        "late outcome of delivery %s (%s) not recorded: its lease was lost (another deliverer"
        " claimed it since, or it is final); the outcome was %s: %s",
        reminder.delivery_id,
        reminder.idempotency_key,
        what,
        detail[:200],
    )
    return 1


@dataclass
class Lane:
    """One sender's deliveries due by due_by, claimed until deadline (monotonic)."""

    db: Database
    config: DeliveryConfig
    today: Callable[[], object]
    sender: Sender
    due_by: datetime
    deadline: float
    report: DrainReport

    def run(self) -> None:
        channel = self.sender.channel
        try:
            with (
                ThreadPoolExecutor(self.config.concurrency, f"send-{channel}") as pool,
                self.db.connection(autocommit=True) as session,
            ):
                self._pump(session, pool)
        except Exception as exc:  # one lane's failure must not stop the others
            log.exception("the %s lane stopped", channel)
            with self.report.lock:
                self.report.problems.append(f"{channel}: {type(exc).__name__}: {exc}")

    def _pump(self, session: Session, pool: ThreadPoolExecutor) -> None:
        """Claim once half the threads are free (so claims stay few), and record the
        outcomes that came together in one statement per kind."""
        threads = self.config.concurrency
        flying: Flying = {}
        more = True
        while True:
            free = threads - len(flying)
            if more and free >= max(1, threads // 2) and time.monotonic() < self.deadline:
                more = self._claim(session, pool, min(free, self.config.batch_size), flying)
                continue
            if not flying:
                return
            done, _ = wait(flying, return_when=FIRST_COMPLETED)
            self._record(session, [(*flying.pop(f), f.result()) for f in done])

    def _claim(
        self, session: Session, pool: ThreadPoolExecutor, limit: int, flying: Flying
    ) -> bool:
        """Lease up to limit deliveries (no more than the free threads: every send starts
        right after the contact check) and start their sends; False when none was due."""
        token = str(uuid.uuid4())
        # Measured from before the claim: the lease ends no earlier than this on the server.
        lease_end = time.monotonic() + self.config.lease_s
        rows = session.all(
            "claim_deliveries",
            channel=self.sender.channel,
            limit=limit,
            due_by=self.due_by,
            today=self.today(),
            language=self.config.language,
            lease_s=self.config.lease_s,
            lease_token=token,
            max_attempts=self.config.max_attempts,
        )
        cancelled = sum(1 for r in rows if r["cancel_reason"] is not None)
        used_up = sum(1 for r in rows if r["cancel_reason"] is None and r["used_up"])
        self.report.add(self.sender.channel, {"cancelled": cancelled, "dead": used_up})
        for row in rows:
            if row["cancel_reason"] is None and not row["used_up"]:
                reminder = Reminder.from_row(row)
                future = pool.submit(self._send, reminder, lease_end)
                flying[future] = (reminder, token, row["attempts"])
        return bool(rows)

    def _record(
        self, session: Session, results: list[tuple[Reminder, str, int, str | SendFailed | None]]
    ) -> None:
        """Outcomes, fenced by each claim's token; one statement per kind. Any delivery
        the statement did not return came late (its lease was lost): logged, counted."""
        counts = dict.fromkeys(OUTCOMES, 0)
        late = 0
        sent = [(r, t, o) for r, t, _, o in results if isinstance(o, str)]
        if sent:
            rows = session.all(
                "record_deliveries_sent",
                ids=[r.delivery_id for r, _, _ in sent],
                responses=[_storable(o) for _, _, o in sent],
                tokens=[t for _, t, _ in sent],
            )
            recorded = {row["id"] for row in rows}
            counts["sent"] = len(recorded)
            late += sum(_late(r, "sent", o) for r, _, o in sent if r.delivery_id not in recorded)
        failed = [(r, t, a, o) for r, t, a, o in results if isinstance(o, SendFailed)]
        if failed:
            base = self.config.retry_base_s
            rows = session.all(
                "record_deliveries_failed",
                ids=[r.delivery_id for r, _, _, _ in failed],
                errors=[_storable(str(o))[:1000] for _, _, _, o in failed],
                delays=[retry_delay_s(a, base, o.retry_after_s) for _, _, a, o in failed],
                permanent=[o.permanent for _, _, _, o in failed],
                tokens=[t for _, t, _, _ in failed],
                max_attempts=self.config.max_attempts,
            )
            states = {row["id"]: row["state"] for row in rows}
            for reminder, _, _, outcome in failed:
                if reminder.delivery_id in states:
                    counts[states[reminder.delivery_id]] += 1
                else:
                    late += _late(reminder, "failed", str(outcome))
        untried = [(r, t) for r, t, _, o in results if o is None]
        if untried:
            session.run(
                "release_deliveries",
                ids=[r.delivery_id for r, _ in untried],
                tokens=[t for _, t in untried],
            )
        self.report.add(self.sender.channel, counts, late)

    def _send(self, reminder: Reminder, lease_end: float) -> str | SendFailed | None:
        """The provider's answer, the failure, or None: not tried (the drain's time is
        up, or the send could not end inside the lease, e.g. after a freeze: the
        delivery stays due and is not counted as an attempt)."""
        now = time.monotonic()
        # A send ends by its timeout + SEND_MARGIN_S; the outcome is recorded before
        # the lease ends (settings/delivery_lease.py).
        inside_lease = lease_end - LEASE_MARGIN_S - now
        if now >= self.deadline or inside_lease < min(self.config.timeout_s, 1.0):
            return None
        timeout_s = min(self.config.timeout_s, max(self.deadline - now, 1.0), inside_lease)
        try:
            return self.sender.send(reminder, timeout_s)
        except SendFailed as exc:
            return exc
        except Exception as exc:  # a sender's bug is this delivery's failure, not the lane's
            log.exception("sending delivery %s failed", reminder.delivery_id)
            return SendFailed(f"{type(exc).__name__}: {exc}")
