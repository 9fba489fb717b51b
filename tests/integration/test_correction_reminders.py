"""A manual correction never resends: reminders sent since the corrected date count.

Issue: a backward correction of last_contact_date started a "new" silence (the
natural key holds the silence's start), so the next run sent reminder #2 again
the same day, and repeated corrections passed the cap. The rule now (migration
0005, docs/decisions/contact-reset-guarantee.md, Decision 4): the reminders sent
since the corrected date are carried into the silence the correction starts;
they count toward its cap and numbering, and the next reminder waits an
interval after the latest. Real PostgreSQL, the real run and correction services.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from tests.helpers.corrections import (
    INTERVAL,
    START,
    D,
    FixedDay,
    correct,
    run,
    sent,
)
from tests.helpers.data import add_assignment, add_mentor, db_rows


def test_corrections_followed_by_runs_never_resend(db, db_url) -> None:
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO admin_tokens (name, key_id, token_hash, scopes)"
            " VALUES ('corrector', 'k1', '\\x00', '{correct}')"
        )
    mentor = add_mentor(db)
    last = D - timedelta(days=2 * INTERVAL)  # reminders #1 on D - 7 and #2 on D
    ids = {
        name: add_assignment(db, mentor, last, started_on=START)
        for name in ("backward", "repeated", "forward", "far_backward", "control")
    }
    run(db_url, D - timedelta(days=INTERVAL))
    run(db_url, D)
    for name in ids.values():
        assert sent(db, name) == [(D - timedelta(days=7), 1), (D, 2)]

    # The case: one day back, then a run the same day.
    correct(db, ids["backward"], last - timedelta(days=1))
    # Three one-day corrections, each followed by a run.
    for back in (1, 2, 3):
        correct(db, ids["repeated"], last - timedelta(days=back))
        run(db_url, D)
    # The real contact was later: reminder #2 (D) came after it and counts.
    correct(db, ids["forward"], D - timedelta(days=3))
    # Far back: the silence is "older" than the cap, the two reminders still count.
    correct(db, ids["far_backward"], D - timedelta(days=100))
    run(db_url, D)
    for name, assignment in ids.items():
        assert sent(db, assignment) == [(D - timedelta(days=7), 1), (D, 2)], name

    # Daily runs for three weeks.
    for day in range(1, 22):
        run(db_url, D + timedelta(days=day))
    after = {name: sent(db, a)[2:] for name, a in ids.items()}
    week = timedelta(days=INTERVAL)
    assert after == {
        # The numbering goes on: #3 an interval after #2, then the cap holds.
        "backward": [(D + week, 3)],
        "repeated": [(D + week, 3)],
        # The silence began D - 3: #2 is due D + 11, #3 D + 18.
        "forward": [(D + timedelta(days=11), 2), (D + timedelta(days=18), 3)],
        "far_backward": [(D + week, 3)],
        "control": [(D + week, 3)],
    }
    lasts = {r["id"]: r["last_contact_date"] for r in db_rows(db, "SELECT * FROM assignments")}
    for assignment in ids.values():
        per_day = Counter(day for day, _ in sent(db, assignment))
        assert max(per_day.values()) == 1
        # The cap: at most three reminders sent since the silence began.
        assert len([d for d, _ in sent(db, assignment) if d > lasts[assignment]]) <= 3

    # A correction after the carried silence's last reminder: the cap is reached.
    FixedDay.offset = 21
    try:
        correct(db, ids["backward"], last - timedelta(days=30))
        run(db_url, D + timedelta(days=21))
        run(db_url, D + timedelta(days=40))
    finally:
        FixedDay.offset = 0
    assert len(sent(db, ids["backward"])) == 3
    # A contact starts a fresh silence: what a correction carried no longer applies.
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO activities (assignment_id, occurred_on) VALUES (%s, %s)",
            (ids["far_backward"], D + timedelta(days=22)),
        )
    run(db_url, D + timedelta(days=29))
    assert sent(db, ids["far_backward"])[-1] == (D + timedelta(days=29), 1)
