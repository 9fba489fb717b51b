"""Deliverer: drain the outbox once: expand new reminders into deliveries, then send.

Expanding: reminders created since the last drain become one delivery per channel of
their mentor that leaves the database (none at all when every mentor is in-app
only). It waits while a run holds the run lock (reads pg_locks, never takes the
lock) and goes only up to the highest notifications id handed out before that
check, so a reminder still being written is never skipped.

Sending: one lane (a thread with its own database session) per channel, so a dead
SMTP server never slows the webhooks. A lane leases a batch (no more deliveries than
the channel has threads) with SKIP LOCKED in one committed statement that counts the
attempt, writes a fresh lease token and moves next_attempt_at to the lease's end
(REMINDERS_DELIVERY_LEASE_S); the channel's thread pool sends it, and each outcome is
recorded in its own statement as it comes, only where the token still holds the lease
(fenced: a late outcome changes nothing and is logged). No transaction is open during
a send, and every send ends by its deadline, well inside the lease. A crash or a
freeze leaves the leased deliveries due when the lease ends: they are sent again,
once, with the same Idempotency-Key (at least once; docs/decisions/delivery-outbox.md).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

import backoff

from reminders_pipeline.db.connector import Database, Session
from reminders_pipeline.db.lock_holder import lock_holders
from reminders_pipeline.delivery.config import DeliveryConfig, not_configured, senders_from_env
from reminders_pipeline.delivery.reminder import Reminder, Sender, SendFailed
from reminders_pipeline.settings import ReminderSettings
from reminders_pipeline.settings.delivery_lease import LEASE_MARGIN_S

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_S = 24 * 60 * 60
EXPAND_BATCH = 50_000
OUTCOMES = ("sent", "retry", "dead", "cancelled")


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
    late: outcomes that came after their lease was lost (not recorded)."""

    expanded: int = 0
    late: int = 0
    channels: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def count(self, channel: str, outcome: str, n: int = 1) -> None:
        counts = self.channels.setdefault(channel, dict.fromkeys(OUTCOMES, 0))
        counts[outcome] += n

    def totals(self) -> dict[str, int]:
        return {o: sum(c[o] for c in self.channels.values()) for o in OUTCOMES}


def _storable(text: str) -> str:
    """PostgreSQL text refuses NUL: a provider's answer or error keeps the rest."""
    return text.replace("\x00", "")


def _value(row: dict[str, Any] | None, column: str) -> Any:
    assert row is not None, "a one-row query returned no row"
    return row[column]


class Deliverer:
    def __init__(
        self,
        db: Database,
        config: DeliveryConfig,
        senders: dict[str, Sender],
        today: Callable[[], object],
    ) -> None:
        self.db, self.config, self.senders, self.today = db, config, senders, today
        self._lock = threading.Lock()

    def drain(self) -> DrainReport:
        report = DrainReport()
        deadline = time.monotonic() + self.config.max_runtime_s
        report.expanded = self.expand()
        due_by = _value(self.db.fetch_one("delivery_clock"), "now")
        lanes = [
            threading.Thread(
                target=self._lane, args=(sender, due_by, deadline, report), name=f"deliver-{name}"
            )
            for name, sender in self.senders.items()
        ]
        for lane in lanes:
            lane.start()
        for lane in lanes:
            lane.join()
        for row in self.db.fetch_all("due_delivery_channels"):
            if row["channel"] not in self.senders:
                report.problems.append(
                    f"{row['due']} {row['channel']} deliveries are waiting: "
                    f"{not_configured(row['channel'])}"
                )
        return report

    def close(self) -> None:
        for sender in self.senders.values():
            sender.close()

    # ---------------------------------------------------------------- expanding

    def expand(self) -> int:
        """New reminders into deliveries; returns how many deliveries were created."""
        created = 0
        with self.db.connection(autocommit=True) as session:
            # The high mark first, then the lock check: see the module's docstring.
            high_mark = _value(session.one("delivery_id_high_mark"), "high_mark")
            if lock_holders(session):  # read only: the deliverer never takes the run lock
                log.info("a reminders run holds the run lock: its reminders wait for a drain")
                return 0
            org = self.config.org_channels
            needed = _value(session.one("deliveries_needed", org_channels=org), "needed")
            while True:
                with session.transaction():
                    cursor = session.one("lock_delivery_cursor")
                    if cursor is None or cursor["last_notification_id"] >= high_mark:
                        return created  # another deliverer expanded it, or nothing new
                    after = cursor["last_notification_id"]
                    if not needed:  # in-app only: move the cursor, nothing else
                        session.run("advance_delivery_cursor", upto=high_mark)
                        return created
                    upto = min(after + EXPAND_BATCH, high_mark)
                    created += session.run(
                        "expand_deliveries", org_channels=org, after_id=after, upto=upto
                    )
                    session.run("advance_delivery_cursor", upto=upto)

    # ---------------------------------------------------------------- sending

    def _lane(self, sender: Sender, due_by: datetime, deadline: float, report: DrainReport) -> None:
        try:
            with (
                ThreadPoolExecutor(self.config.concurrency, f"send-{sender.channel}") as pool,
                self.db.connection(autocommit=True) as session,
            ):
                while time.monotonic() < deadline:
                    if not self._batch(session, sender, pool, due_by, deadline, report):
                        break
        except Exception as exc:  # one lane's failure must not stop the others
            log.exception("the %s lane stopped", sender.channel)
            with self._lock:
                report.problems.append(f"{sender.channel}: {type(exc).__name__}: {exc}")

    def _batch(
        self,
        session: Session,
        sender: Sender,
        pool: ThreadPoolExecutor,
        due_by: datetime,
        deadline: float,
        report: DrainReport,
    ) -> bool:
        """Lease, send and record one batch; False when nothing was due. No transaction
        is open during a send: the lease and each outcome are short statements."""
        token = str(uuid.uuid4())
        # Measured from before the claim: the lease ends no earlier than this on the server.
        lease_end = time.monotonic() + self.config.lease_s
        rows = session.all(
            "claim_deliveries",
            channel=sender.channel,
            # No more than the threads: every send starts right after the contact check.
            limit=min(self.config.batch_size, self.config.concurrency),
            due_by=due_by,
            today=self.today(),
            language=self.config.language,
            lease_s=self.config.lease_s,
            lease_token=token,
            max_attempts=self.config.max_attempts,
        )
        if not rows:
            return False
        cancelled = sum(1 for r in rows if r["cancel_reason"] is not None)
        used_up = sum(1 for r in rows if r["cancel_reason"] is None and r["used_up"])
        reminders = [
            Reminder.from_row(r) for r in rows if r["cancel_reason"] is None and not r["used_up"]
        ]
        attempts = {row["id"]: row["attempts"] for row in rows}
        counts = dict.fromkeys(OUTCOMES, 0)
        counts["cancelled"], counts["dead"] = cancelled, used_up
        untried: list[int] = []
        late = 0
        futures = {pool.submit(self._send, sender, r, deadline, lease_end): r for r in reminders}
        for future in as_completed(futures):
            reminder, outcome = futures[future], future.result()
            if outcome is None:
                untried.append(reminder.delivery_id)
            elif isinstance(outcome, str):
                row = session.one(
                    "record_deliveries_sent",
                    ids=[reminder.delivery_id],
                    responses=[_storable(outcome)],
                    lease_token=token,
                )
                if row is None:
                    late += _late(reminder, "sent", outcome)
                else:
                    counts["sent"] += 1
            else:
                row = session.one(
                    "record_deliveries_failed",
                    ids=[reminder.delivery_id],
                    errors=[_storable(str(outcome))[:1000]],
                    delays=[
                        retry_delay_s(
                            attempts[reminder.delivery_id],
                            self.config.retry_base_s,
                            outcome.retry_after_s,
                        )
                    ],
                    permanent=[outcome.permanent],
                    max_attempts=self.config.max_attempts,
                    lease_token=token,
                )
                if row is None:
                    late += _late(reminder, "failed", str(outcome))
                else:
                    counts[row["state"]] += 1
        if untried:
            session.run("release_deliveries", ids=untried, lease_token=token)
        with self._lock:
            report.late += late
            for outcome, n in counts.items():
                report.count(sender.channel, outcome, n)
        return True

    def _send(
        self, sender: Sender, reminder: Reminder, deadline: float, lease_end: float
    ) -> str | SendFailed | None:
        """The provider's answer, the failure, or None: not tried (the drain's time is
        up, or the send could not end inside the lease, e.g. after a freeze: the
        delivery stays due and is not counted as an attempt)."""
        now = time.monotonic()
        # A send ends by its timeout + SEND_MARGIN_S; the outcome is recorded before
        # the lease ends (settings/delivery_lease.py).
        inside_lease = lease_end - LEASE_MARGIN_S - now
        if now >= deadline or inside_lease < min(self.config.timeout_s, 1.0):
            return None
        timeout_s = min(self.config.timeout_s, max(deadline - now, 1.0), inside_lease)
        try:
            return sender.send(reminder, timeout_s)
        except SendFailed as exc:
            return exc
        except Exception as exc:  # a sender's bug is this delivery's failure, not the lane's
            log.exception("sending delivery %s failed", reminder.delivery_id)
            return SendFailed(f"{type(exc).__name__}: {exc}")


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


def deliverer_from_env(db: Database) -> Deliverer:
    """A Deliverer with the configuration and senders of the environment."""
    config = DeliveryConfig.from_env()
    return Deliverer(
        db, config, senders_from_env(config.concurrency), ReminderSettings.from_env().today
    )
