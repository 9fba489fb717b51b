"""Where alerts go: the log (always), Slack-compatible and generic JSON webhooks, SMTP.

Delivery never raises: a sink that is down is retried with exponential backoff
(the `backoff` library), then logged and given up, so a broken webhook cannot
fail the sensor that noticed the problem.
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import backoff

from reminders_pipeline.alerts.messages import Alert

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0


class AlertSink(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


class LogSink:
    name = "log"

    def __init__(self, logger: Any = None) -> None:
        self.logger = logger or log

    def send(self, alert: Alert) -> None:
        self.logger.warning(f"ALERT [{alert.kind}] {alert.as_text()}")


@dataclass
class WebhookSink:
    """A POST of the alert as JSON: `render` is Alert.as_slack (a Slack-compatible
    incoming webhook) or Alert.as_json (the generic shape)."""

    url: str = field(repr=False)  # a Slack webhook URL is a credential: never in a log
    render: Callable[[Alert], dict[str, Any]]
    name: str
    timeout_s: float = DEFAULT_TIMEOUT_S

    def send(self, alert: Alert) -> None:
        request = urllib.request.Request(
            self.url,
            data=json.dumps(self.render(alert)).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "reminders-pipeline-alerts"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            response.read()


@dataclass
class SmtpSink:
    host: str
    sender: str
    recipients: list[str] = field(default_factory=list)
    port: int = 25
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log
    starttls: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    name: str = "email"

    def send(self, alert: Alert) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(alert.as_email(self.sender, self.recipients))


def _permanent(exc: Exception) -> bool:
    """A 4xx answer (other than 429) will not get better by retrying."""
    return (
        isinstance(exc, urllib.error.HTTPError) and 400 <= exc.code < 500 and exc.code != 429
    ) or isinstance(exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPAuthenticationError)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


def deliver(
    alert: Alert,
    sinks: list[AlertSink],
    *,
    logger: Any = None,
    max_tries: int = 3,
    backoff_factor_s: float = 0.5,
) -> dict[str, bool]:
    """Send the alert to every sink; returns sink name -> delivered. Never raises."""
    logger = logger or log
    results: dict[str, bool] = {}
    for sink in sinks:

        def on_backoff(details: Any, sink: AlertSink = sink) -> None:
            logger.warning(
                f"alert sink {sink.name} failed (try {details['tries']} of {max_tries}): "
                f"{_describe(details['exception'])}; retrying"
            )

        send = backoff.on_exception(
            backoff.expo,
            Exception,
            max_tries=max(1, max_tries),
            factor=backoff_factor_s,
            giveup=_permanent,
            on_backoff=on_backoff,
            logger=None,
        )(sink.send)
        try:
            send(alert)
            results[sink.name] = True
        except Exception as exc:  # delivery must never fail the caller
            logger.error(
                f"alert sink {sink.name} gave up on the {alert.kind} alert: {_describe(exc)}"
            )
            results[sink.name] = False
    return results
