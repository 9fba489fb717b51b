"""The deliverer's pure parts: backoff, Standard Webhooks signatures, Retry-After,
channel and SMTP settings."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from reminders_pipeline.delivery.lane import MAX_RETRY_DELAY_S, retry_delay_s
from reminders_pipeline.delivery.webhook import Signer, retry_after_s
from reminders_pipeline.errors import ConfigError
from reminders_pipeline.settings.delivery import CHANNELS, SMTP_URL, WEBHOOK_SECRET


def test_retry_delay_doubles_with_full_jitter_and_respects_retry_after() -> None:
    for attempt, ceiling in [(1, 60), (2, 120), (3, 240), (30, MAX_RETRY_DELAY_S)]:
        delays = [retry_delay_s(attempt, 60) for _ in range(200)]
        assert all(1 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # jitter spreads over the whole range
        assert len(set(delays)) > 100
    assert retry_delay_s(1, 60, retry_after_s=600) == 600
    assert retry_delay_s(1, 60, retry_after_s=10**9) == MAX_RETRY_DELAY_S


OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW = "whsec_" + base64.b64encode(b"n" * 32).decode()


def test_the_official_library_verifies_what_is_signed_and_nothing_else() -> None:
    body = b'{"a":1}'
    headers = Signer([OLD]).headers("reminder-1-webhook", body)
    assert headers["webhook-id"] == "reminder-1-webhook"
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(OLD).verify(body, headers) == {"a": 1}
    for secret, data, changed in [
        (NEW, body, {}),  # another secret
        (OLD, b'{"a":2}', {}),  # another body
        (OLD, body, {"webhook-id": "reminder-2-webhook"}),  # another id
        (OLD, body, {"webhook-timestamp": str(int(time.time()) - 600)}),  # a replay
    ]:
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(data, {**headers, **changed})


def test_rotation_signs_with_each_secret_so_either_verifies() -> None:
    body = b'{"a":1}'
    headers = Signer([OLD, NEW]).headers("reminder-1-webhook", body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(OLD).verify(body, headers) == Webhook(NEW).verify(body, headers) == {"a": 1}
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


@pytest.mark.parametrize(
    ("value", "problem"),
    [("test-webhook-secret", "must be whsec_"), ("whsec_not base64!", "must be whsec_"),
     ("whsec_QUJD", "24 to 64 bytes, got 3"), (f"{OLD} nope", "(secret 2 of 2)")],
)  # fmt: skip
def test_a_secret_that_is_not_whsec_base64_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("REMINDERS_WEBHOOK_SECRET", value)
    with pytest.raises(ConfigError, match="REMINDERS_WEBHOOK_SECRET") as caught:
        WEBHOOK_SECRET.get()
    assert problem in str(caught.value)
    monkeypatch.setenv("REMINDERS_WEBHOOK_SECRET", f"{OLD} {NEW}")
    assert WEBHOOK_SECRET.get() == [OLD, NEW]


def test_retry_after_takes_seconds_or_a_date() -> None:
    assert retry_after_s("120") == 120
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past
    assert retry_after_s("soon") is None
    assert retry_after_s(None) is None


def test_channels_and_smtp_url_settings_name_the_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDERS_CHANNELS", "in_app, Email ,email")
    assert CHANNELS.get() == ["in_app", "email"]
    monkeypatch.setenv("REMINDERS_CHANNELS", "sms,email")
    with pytest.raises(ConfigError, match=r"REMINDERS_CHANNELS names unknown channels \['sms'\]"):
        CHANNELS.get()
    monkeypatch.setenv("REMINDERS_SMTP_URL", "smtp://u%40x:p%3Aw@mail.example:587")
    assert SMTP_URL.get() == {
        "host": "mail.example", "port": 587, "username": "u@x", "password": "p:w"
    }  # fmt: skip
    monkeypatch.setenv("REMINDERS_SMTP_URL", "http://mail.example:25")
    with pytest.raises(ConfigError, match="REMINDERS_SMTP_URL must be smtp://"):
        SMTP_URL.get()
