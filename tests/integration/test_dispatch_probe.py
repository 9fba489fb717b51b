"""The dispatch leaves out its anti-join while no reminder exists beyond the batch,
and keeps it, with the same outcome, wherever one might."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from reminders_pipeline.core.dispatch import (
    DISPATCH_BATCH,
    DISPATCH_BATCH_UNPROBED,
    ReminderDispatchService,
)
from reminders_pipeline.db.connector import Database, Session, connect
from reminders_pipeline.db.seed import seed
from reminders_pipeline.settings import ReminderSettings
from tests.helpers.data import db_rows

AS_OF = date(2026, 6, 2)
SETTINGS = ReminderSettings(batch_size=500)


class Recording:
    """A session that notes which form of the batch statement each batch sent."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.forms: list[str] = []

    def execute(self, sql: str, params: Any = None) -> Any:
        if sql == DISPATCH_BATCH:
            self.forms.append("probe")
        elif sql == DISPATCH_BATCH_UNPROBED:
            self.forms.append("no probe")
        return self.session.execute(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[Recording]:
        with self.session.transaction():
            yield self


def _dispatch(db: Database) -> tuple[Any, list[str]]:
    with connect(db.url, autocommit=True) as session:
        recording = Recording(session)
        counts = ReminderDispatchService(db, SETTINGS).dispatch(
            AS_OF, None, transaction=recording.transaction
        )
    return counts, recording.forms


def _keys(db: Database) -> list[tuple]:
    rows = db_rows(
        db,
        "SELECT assignment_id, kind, silence_started_on, sequence FROM notifications"
        " ORDER BY 1, 2, 3, 4",
    )
    return [tuple(r.values()) for r in rows]


def test_a_first_run_sends_no_probe_and_a_rerun_probes_every_batch(db: Database) -> None:
    seed(db, assignments=2000, due_fraction=0.5, today=AS_OF, default_interval_days=10)
    first, forms = _dispatch(db)
    assert first.created == first.selected > 500
    assert forms and set(forms) == {"no probe"}
    keys = _keys(db)
    again, forms = _dispatch(db)
    assert (again.created, again.already_existed) == (0, first.selected)
    assert forms and set(forms) == {"probe"}
    assert _keys(db) == keys


def test_reminders_of_the_first_assignments_only_are_probed_for_then_no_longer(
    db: Database,
) -> None:
    seed(db, assignments=2000, due_fraction=0.5, today=AS_OF, default_interval_days=10)
    whole, _ = _dispatch(db)
    with db.connection(autocommit=True) as conn:
        # Only the reminders of the first 300 active assignments stay.
        conn.execute(
            "DELETE FROM notifications WHERE assignment_id > (SELECT id FROM assignments"
            " WHERE status = 'active' ORDER BY id OFFSET 299 LIMIT 1)"
        )
    kept = len(_keys(db))
    assert 0 < kept < whole.created
    counts, forms = _dispatch(db)
    assert (counts.selected, counts.created) == (whole.selected, whole.created - kept)
    assert counts.already_existed == kept
    # The batches up to the last assignment with a reminder probe; the rest do not.
    assert forms[0] == "probe" and forms[-1] == "no probe"
    assert forms == sorted(forms, key=lambda form: form == "no probe")
    assert len(_keys(db)) == whole.created
