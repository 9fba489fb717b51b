"""The deliverer's pure parts: backoff, signature, Retry-After, channel and SMTP settings."""

from __future__ import annotations

import pytest

from reminders_pipeline.delivery.deliverer import MAX_RETRY_DELAY_S, retry_delay_s
from reminders_pipeline.delivery.webhook import retry_after_s, signature
from reminders_pipeline.errors import ConfigError
from reminders_pipeline.settings import delivery_settings as s
from tests.helpers.delivery_servers import verify


def test_retry_delay_doubles_with_full_jitter_and_respects_retry_after() -> None:
    for attempt, ceiling in [(1, 60), (2, 120), (3, 240), (30, MAX_RETRY_DELAY_S)]:
        delays = [retry_delay_s(attempt, 60) for _ in range(200)]
        assert all(1 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # jitter spreads over the whole range
        assert len(set(delays)) > 100
    assert retry_delay_s(1, 60, retry_after_s=600) == 600
    assert retry_delay_s(1, 60, retry_after_s=10**9) == MAX_RETRY_DELAY_S


def test_signature_verifies_and_fails_for_another_body_or_secret() -> None:
    header = signature("k", b'{"a":1}', 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify("k", header, b'{"a":1}', tolerance_s=10**10)
    assert not verify("k", header, b'{"a":2}', tolerance_s=10**10)
    assert not verify("other", header, b'{"a":1}', tolerance_s=10**10)
    assert not verify("k", header, b'{"a":1}')  # too old: a replay


def test_retry_after_takes_seconds_or_a_date() -> None:
    assert retry_after_s("120") == 120
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past
    assert retry_after_s("soon") is None
    assert retry_after_s(None) is None


def test_channels_and_smtp_url_settings_name_the_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDERS_CHANNELS", "in_app, Email ,email")
    assert s.CHANNELS.get() == ["in_app", "email"]
    monkeypatch.setenv("REMINDERS_CHANNELS", "sms,email")
    with pytest.raises(ConfigError, match=r"REMINDERS_CHANNELS names unknown channels \['sms'\]"):
        s.CHANNELS.get()
    monkeypatch.setenv("REMINDERS_SMTP_URL", "smtp://u%40x:p%3Aw@mail.example:587")
    assert s.smtp_server(s.SMTP_URL.get()) == {
        "host": "mail.example", "port": 587, "username": "u@x", "password": "p:w"
    }  # fmt: skip
    monkeypatch.setenv("REMINDERS_SMTP_URL", "http://mail.example:25")
    with pytest.raises(ConfigError, match="REMINDERS_SMTP_URL must be smtp://"):
        s.SMTP_URL.get()
