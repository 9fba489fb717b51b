"""Chaos soak of delivery: three real `reminders deliver` at once, random SIGKILL and
SIGSTOP/SIGCONT, a receiver that fails a share of requests and answers slowly (every
other trial so slowly that a freeze is likely to catch sends in flight), and contacts
registered during the drain. Then the receiver recovers and one more drain runs. Per
trial:

- every delivery ends `sent` or `cancelled`: nothing is left pending;
- repeats only of sends in flight when a process was killed or frozen (at most
  REMINDERS_DELIVERY_CONCURRENCY per kill or freeze, so at most one per key per fault):
  a kill leaves its leases to run out, and a freeze longer than a send's deadline makes
  that send time out when the process resumes, its answer unread, so it is retried;
- no request for an assignment after its contact committed, beyond one send that
  had already started (the deadline, its margin, and the longest freeze);
- a `sent` delivery was accepted by the receiver, a `cancelled` one has a contact.

REMINDERS_DELIVERY_SOAK_TRIALS (default 2) trials; the seed is printed and
REMINDERS_DELIVERY_SOAK_SEED replays it."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest

from reminders_pipeline.contacts.activities import ContactRegistrationService
from reminders_pipeline.db.connector import Database
from reminders_pipeline.settings import ReminderSettings
from reminders_pipeline.settings.delivery_lease import SEND_MARGIN_S
from tests.helpers.data import db_rows
from tests.helpers.delivery_servers import SECRET, ReminderReceiver
from tests.helpers.outbox import AS_OF, due_reminders
from tests.helpers.runs import Child, RemindersCli

pytestmark = pytest.mark.acceptance

TRIALS = int(os.environ.get("REMINDERS_DELIVERY_SOAK_TRIALS", "2"))
SEED = int(os.environ.get("REMINDERS_DELIVERY_SOAK_SEED", str(random.randrange(10**6))))
PER_TRIAL = 24
CONCURRENCY = 4
TIMEOUT_S = 1
LEASE_S = 7
MAX_FREEZE_S = 2.0
DELIVERERS = 3


def _chaos(rng: random.Random, child: Child, faults: list[tuple[float, float]]) -> None:
    """One random fate for one deliverer: none, SIGKILL, or a freeze (within its lease).
    A fault is noted as its (start, end) wall times; a kill's end is its start."""
    fate = rng.choice(["none", "kill", "freeze", "freeze"])
    time.sleep(rng.uniform(0.0, 2.5))
    if not child.alive() or fate == "none":
        return
    start = time.time()
    if fate == "kill":
        child.popen.send_signal(signal.SIGKILL)
    else:
        child.popen.send_signal(signal.SIGSTOP)
        time.sleep(rng.uniform(0.2, MAX_FREEZE_S))
        child.popen.send_signal(signal.SIGCONT)
    faults.append((start, time.time()))


def _in_flight_at_a_fault(at: float, faults: list[tuple[float, float]]) -> bool:
    """Whether a request the receiver got at `at` may have been in flight at a fault: sent
    no earlier than the longest send before it began, and before it ended."""
    longest_s = TIMEOUT_S + SEND_MARGIN_S + 0.5
    return any(start - longest_s <= at <= end + 0.5 for start, end in faults)


def _trial(db: Database, cli: RemindersCli, rng: random.Random, trial: int) -> None:
    ids = due_reminders(db, PER_TRIAL, channels=["webhook"])
    mentor = {
        r["id"]: r["mentor_id"]
        for r in db_rows(db, "SELECT id, mentor_id FROM assignments WHERE id = ANY(%s)", (ids,))
    }
    answers = [
        rng.choice([200] * 6 + [500, 503, (429, {"Retry-After": "0"}), "close"])
        for _ in range(PER_TRIAL * 2)
    ]
    contacted: dict[int, float] = {}
    faults: list[tuple[float, float]] = []
    delay_s = 0.4 if trial % 2 == 0 else 0.02
    with ReminderReceiver(answers=answers, then=200, delay_s=delay_s) as receiver:
        env = {
            "REMINDERS_WEBHOOK_URL": receiver.url(),
            "REMINDERS_WEBHOOK_SECRET": SECRET,
            "REMINDERS_DELIVERY_TIMEOUT_S": str(TIMEOUT_S),
            "REMINDERS_DELIVERY_LEASE_S": str(LEASE_S),
            "REMINDERS_DELIVERY_CONCURRENCY": str(CONCURRENCY),
            "REMINDERS_DELIVERY_RETRY_BASE_S": "1",
        }
        children = [cli.start("deliver", "--json", env=env) for _ in range(DELIVERERS)]
        fates = [
            threading.Thread(target=_chaos, args=(random.Random(rng.random()), c, faults))
            for c in children
        ]
        for fate in fates:
            fate.start()
        contacts = ContactRegistrationService(db, ReminderSettings())
        for assignment in rng.sample(ids, 4):
            time.sleep(rng.uniform(0.0, 0.8))
            contacts.register_direct(assignment, AS_OF, mentor_id=mentor[assignment])
            contacted[assignment] = time.time()  # committed
        for fate in fates:
            fate.join()
        for child in children:
            child.wait(60)
        # The receiver has recovered; the leases and backoffs are over.
        receiver.answers.clear()
        with db.connection() as conn:
            conn.execute(
                "UPDATE deliveries SET next_attempt_at = now() WHERE state IN ('pending', 'retry')"
            )
        final = cli("deliver", "--json", env=env)
        assert final.returncode == 0, final.describe()
        requests = list(receiver.requests)
        accepted = dict(receiver.accepted)

    where = f"trial {trial} (seed {SEED}, answers after {delay_s:g} s, faults {len(faults)})"
    rows = db_rows(
        db,
        "SELECT d.state, a.id AS assignment_id, 'reminder-' || d.notification_id || '-webhook'"
        " AS key FROM deliveries AS d JOIN notifications AS n ON n.id = d.notification_id"
        " JOIN assignments AS a ON a.id = n.assignment_id WHERE a.id = ANY(%s)",
        (ids,),
    )
    assert len(rows) == PER_TRIAL, where
    assert {r["state"] for r in rows} <= {"sent", "cancelled"}, (where, rows)
    repeats = {key: n for key, n in accepted.items() if n > 1}
    # Every accepted copy but a key's last had its answer unread: a fault had it in flight.
    unread = [
        sorted(r["at"] for r in requests if r["key"] == key and r["answer"] == 200)[:-1]
        for key in repeats
    ]
    assert max(accepted.values(), default=0) <= 1 + len(faults), (where, accepted)
    assert sum(map(len, unread)) <= CONCURRENCY * len(faults), (where, repeats)
    for key, copies in zip(repeats, unread, strict=True):
        for at in copies:
            assert _in_flight_at_a_fault(at, faults), (where, key, at, faults)
    for row in rows:
        if row["state"] == "sent":
            assert accepted.get(row["key"], 0) >= 1, (where, row)
        else:
            assert row["assignment_id"] in contacted, (where, row)
    states = [r["state"] for r in rows]
    print(
        f"{where}: sent {states.count('sent')}, cancelled {states.count('cancelled')},"
        f" requests {len(requests)}, repeated keys {len(repeats)}"
    )
    by_key = {r["key"]: r["assignment_id"] for r in rows}
    window_s = TIMEOUT_S + SEND_MARGIN_S + MAX_FREEZE_S + 0.5
    for request in requests:
        contact_at = contacted.get(by_key.get(request["key"], -1))
        if contact_at is not None:
            assert request["at"] <= contact_at + window_s, (where, "sent after a contact")


def test_delivery_chaos_soak(db: Database, reminders_cli: RemindersCli) -> None:
    print(f"delivery chaos soak: {TRIALS} trials, seed {SEED}")
    rng = random.Random(SEED)
    for trial in range(1, TRIALS + 1):
        _trial(db, reminders_cli, rng, trial)
