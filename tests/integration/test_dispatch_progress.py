"""The dispatch op's progress lines: one per PROGRESS_EVERY_S, and always the last batch.

Every line is an event the run writes to its Dagster instance before the next
batch starts, so a quick run of many batches logs only where it ended.
"""

from __future__ import annotations

import pytest

from reminders_pipeline.orchestration import ops
from reminders_pipeline.orchestration.dagster_home import dagster_instance
from reminders_pipeline.orchestration.launch import run_reminders_job
from tests.helpers.runs import seed_assignments, today


def batch_lines(run_id: str) -> list[str]:
    with dagster_instance() as instance:
        messages = [entry.user_message for entry in instance.all_logs(run_id)]
    return [m for m in messages if m.startswith("batch ")]


@pytest.mark.parametrize("every_s", [3600.0, 0.0])
def test_a_quick_run_logs_its_last_batch_and_a_slow_one_every_batch(
    reminders_env, db, db_url, monkeypatch: pytest.MonkeyPatch, every_s: float
) -> None:
    seed_assignments(db, 20, 0.5, today())
    monkeypatch.setenv("REMINDERS_BATCH_SIZE", "2")
    monkeypatch.setattr(ops, "PROGRESS_EVERY_S", every_s)
    summary = run_reminders_job(db_url, today())
    assert summary.status == "success", summary
    lines = batch_lines(summary.dagster_run_id)
    batches = [int(line.split(":")[0].removeprefix("batch ")) for line in lines]
    if every_s:
        assert len(batches) == 1 and batches[0] >= 3, lines  # the last batch only
        assert f"{summary.created} reminders created" in lines[0], lines
    else:
        assert batches == list(range(1, len(batches) + 1)) and len(batches) >= 3, lines
