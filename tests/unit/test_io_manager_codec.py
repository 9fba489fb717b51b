"""The op outputs kept in Dagster's event log survive a JSON round trip unchanged."""

from __future__ import annotations

import json
from datetime import date

import pytest

from reminders_pipeline.core.due import DueSelection
from reminders_pipeline.core.runlog import RunCounts
from reminders_pipeline.orchestration.io_manager import decode, encode


@pytest.mark.parametrize(
    "value",
    [
        date(2025, 3, 1),
        DueSelection(as_of=date(2025, 3, 1), due=3, active=10),
        RunCounts(selected=3, created=2, already_existed=1),
        {"holder": "pid 42 reminders-run:abc since 2025-03-01"},
        {"holder": None},
        None,
    ],
)
def test_round_trip(value: object) -> None:
    assert decode(json.loads(json.dumps(encode(value)))) == value


def test_an_unknown_type_fails_when_stored_naming_it() -> None:
    with pytest.raises(TypeError, match="set"):
        encode({1, 2})
