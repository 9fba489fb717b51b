"""delivery_health_sensor over the fake reads: dead deliveries once per batch, a backlog once."""

from __future__ import annotations

import json

import pytest

from reminders_pipeline.alerts.messages import now_utc
from reminders_pipeline.orchestration.sensors import delivery_health_sensor
from tests.helpers.sensor_fakes import tick

QUIET = "no new dead delivery, no old pending one"


@pytest.fixture(autouse=True)
def one_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDERS_DELIVERY_MAX_PENDING_AGE_S", "3600")


def evaluate(instance, reads, alerts, cursor=None):
    return tick(delivery_health_sensor, instance, reads, alerts, cursor)


def test_an_empty_outbox_is_quiet(instance, reads, alerts):
    message, cursor = evaluate(instance, reads, alerts)
    assert message == QUIET
    assert json.loads(cursor) == {"last_dead_at": None, "last_dead_id": 0, "backlog": False}


def test_dead_deliveries_from_before_the_first_tick_are_old_news(instance, reads, alerts):
    dead = reads.add_delivery("dead", finished_minutes_ago=30, last_error="HTTP 410")
    message, cursor = evaluate(instance, reads, alerts)
    assert message == QUIET
    assert json.loads(cursor)["last_dead_id"] == dead
    assert alerts.sent == []


def test_new_dead_deliveries_alert_once_with_their_latest_errors(instance, reads, alerts):
    _, cursor = evaluate(instance, reads, alerts)
    reads.add_delivery("dead", finished_minutes_ago=3, last_error="HTTP 410")
    last = reads.add_delivery("dead", finished_minutes_ago=1, last_error="HTTP 503")
    message, cursor = evaluate(instance, reads, alerts, cursor)
    assert message == "alerted: 2 dead deliveries"
    [alert] = alerts.sent
    assert alert.kind == "dead_deliveries"
    assert alert.facts == {"dead since last alert": "2", "latest dead delivery id": str(last)}
    assert alert.text.endswith("Latest: HTTP 503 / HTTP 410")
    again, _ = evaluate(instance, reads, alerts, cursor)
    assert again == QUIET, "a dead batch alerts once"


def test_deliveries_dying_out_of_id_order_each_alert(instance, reads, alerts):
    _, cursor = evaluate(instance, reads, alerts)
    low = reads.add_delivery("retry", created_minutes_ago=5)
    reads.add_delivery("dead", finished_minutes_ago=2, last_error="HTTP 410")  # higher id first
    first, cursor = evaluate(instance, reads, alerts, cursor)
    reads.deliveries[low - 1].update(state="dead", finished_at=now_utc(), last_error="HTTP 503")
    second, _ = evaluate(instance, reads, alerts, cursor)
    assert (first, second) == ("alerted: 1 dead deliveries", "alerted: 1 dead deliveries")
    assert ["HTTP 503" in a.text for a in alerts.sent] == [False, True]


def test_a_dead_delivery_without_an_error_says_none_was_recorded(instance, reads, alerts):
    _, cursor = evaluate(instance, reads, alerts)
    reads.add_delivery("dead", finished_minutes_ago=1)
    evaluate(instance, reads, alerts, cursor)
    assert alerts.sent[0].text.endswith("Latest: no error recorded")


def test_a_young_pending_delivery_is_no_backlog(instance, reads, alerts):
    reads.add_delivery("pending", created_minutes_ago=59)
    message, cursor = evaluate(instance, reads, alerts)
    assert message == QUIET
    assert json.loads(cursor)["backlog"] is False


@pytest.mark.parametrize("state", ["pending", "retry"])
def test_an_old_waiting_delivery_alerts_once_and_then_says_it_still_waits(
    instance, reads, alerts, state
):
    reads.add_delivery(state, created_minutes_ago=90)
    message, cursor = evaluate(instance, reads, alerts)
    assert message == "alerted: oldest pending delivery 90 min"
    [alert] = alerts.sent
    assert alert.kind == "pending_deliveries"
    assert alert.facts == {"oldest pending": "90 min", "threshold": "60 min"}
    again, cursor = evaluate(instance, reads, alerts, cursor)
    assert again == "already alerted: oldest pending delivery 90 min"
    assert len(alerts.sent) == 1


@pytest.mark.parametrize("state", ["sent", "cancelled"])
def test_finished_deliveries_are_no_backlog(instance, reads, alerts, state):
    reads.add_delivery(state, created_minutes_ago=600, finished_minutes_ago=500)
    message, _ = evaluate(instance, reads, alerts)
    assert message == QUIET


def test_a_cleared_backlog_alerts_again_when_it_returns(instance, reads, alerts):
    reads.add_delivery("pending", created_minutes_ago=90)
    _, cursor = evaluate(instance, reads, alerts)
    reads.deliveries[0]["state"] = "sent"
    message, cursor = evaluate(instance, reads, alerts, cursor)
    assert message == QUIET
    reads.add_delivery("retry", created_minutes_ago=120)
    message, _ = evaluate(instance, reads, alerts, cursor)
    assert message == "alerted: oldest pending delivery 120 min"
    assert alerts.kinds() == ["pending_deliveries", "pending_deliveries"]


def test_dead_and_old_pending_alert_in_the_same_tick(instance, reads, alerts):
    _, cursor = evaluate(instance, reads, alerts)
    reads.add_delivery("dead", finished_minutes_ago=1, last_error="HTTP 410")
    reads.add_delivery("pending", created_minutes_ago=420)
    message, _ = evaluate(instance, reads, alerts, cursor)
    assert message == "alerted: 1 dead deliveries; oldest pending delivery 420 min"
    assert alerts.kinds() == ["dead_deliveries", "pending_deliveries"]


def test_a_cursor_that_is_not_json_starts_afresh(instance, reads, alerts):
    reads.add_delivery("dead", finished_minutes_ago=5)
    message, cursor = evaluate(instance, reads, alerts, "not json")
    assert message == QUIET
    assert json.loads(cursor)["last_dead_id"] == 1
