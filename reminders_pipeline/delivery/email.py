"""The email channel: one message per reminder over SMTP (smtplib: STARTTLS, TLS, login).

smtplib's timeouts bound each network step; the whole conversation is bounded by the
send's deadline (delivery/deadline.py): at the deadline its connection is shut down,
and the caller stops waiting SEND_MARGIN_S later whatever is still running.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from dataclasses import KW_ONLY, dataclass, field
from email.message import EmailMessage
from email.utils import formataddr
from functools import cache
from importlib import resources
from string import Template

from reminders_pipeline.delivery.address import InvalidAddress, Mailbox, mailbox
from reminders_pipeline.delivery.deadline import DeadlinePassed, SocketWatchdog, call_with_deadline
from reminders_pipeline.delivery.reminder import Reminder, SendFailed
from reminders_pipeline.settings.delivery_lease import SEND_MARGIN_S


@cache
def _template(language: str) -> tuple[Template, Template]:
    path = resources.files(__package__).joinpath("templates", f"{language}.txt")
    text = path.read_text(encoding="utf-8")
    subject, body = text.split("\n", 1)
    return Template(subject), Template(body)


def render_email(reminder: Reminder) -> tuple[str, str]:
    """Subject and body in the mentor's language (templates/<language>.txt)."""
    subject, body = _template(reminder.language)
    values = {
        "mentor_name": reminder.mentor_name,
        "mentee_name": reminder.mentee_name,
        "days": reminder.days_since_contact,
        "last_contact_date": reminder.last_contact_date.isoformat(),
        "sequence": reminder.sequence,
    }
    return subject.substitute(values), body.substitute(values)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the send's time is up")
    return left


def _step(smtp: smtplib.SMTP, deadline: float) -> None:
    """Socket timeouts are per read: each step gets only what is left of the send's time,
    so a server answering one byte at a time cannot stretch a send past its deadline."""
    if smtp.sock is not None:
        smtp.sock.settimeout(_left(deadline))


class _WatchedSMTP(smtplib.SMTP):
    """smtplib.SMTP whose connection the send's watchdog shuts down at the deadline."""

    watchdog: SocketWatchdog

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = super()._get_socket(host, port, timeout)
        try:
            self.watchdog.watch(sock)
        except BaseException:
            sock.close()
            raise
        return sock


class _WatchedSMTPSSL(smtplib.SMTP_SSL, _WatchedSMTP):
    """TLS from the start: SMTP_SSL wraps the socket _WatchedSMTP connected and watched,
    so a handshake that stalls is shut down too (a failed one closes the socket)."""


@dataclass
class SmtpSender:
    channel = "email"

    host: str
    port: int
    sender: str
    _: KW_ONLY
    security: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log
    ssl_context: ssl.SSLContext = field(default_factory=ssl.create_default_context)

    def message(self, reminder: Reminder, address: Mailbox) -> EmailMessage:
        """The email; ValueError naming the field when a header cannot hold a value. To
        is the one validated mailbox with the name as an encoded display name."""
        subject, body = render_email(reminder)
        message = EmailMessage()
        to = formataddr((reminder.mentor_name, address.normalized))
        for header, value, source in (
            ("From", self.sender, "REMINDERS_EMAIL_FROM"),
            ("To", to, f"mentor {reminder.mentor_id}'s name or email"),
            ("Subject", subject, "the subject"),
        ):
            try:
                message[header] = value
            except ValueError as exc:  # CR/LF: a header injection, never sent
                raise ValueError(f"{source} cannot be the {header} header ({exc})") from None
        # Stable per (reminder, channel): a resend after a crash carries the same id.
        message["Message-ID"] = f"<{reminder.idempotency_key}@reminders>"
        message["X-Reminders-Idempotency-Key"] = reminder.idempotency_key
        message["Content-Language"] = reminder.language
        message.set_content(body)
        return message

    def send(self, reminder: Reminder, timeout_s: float) -> str:
        if not reminder.mentor_email:
            raise SendFailed(f"mentor {reminder.mentor_id} has no email address", permanent=True)
        try:  # mentors.email may be written by other applications: checked again here
            address = mailbox(reminder.mentor_email)
        except InvalidAddress as exc:
            raise SendFailed(
                f"mentor {reminder.mentor_id}'s stored email is refused, nothing sent: {exc}",
                permanent=True,
            ) from None
        try:
            return call_with_deadline(
                lambda: self._send(reminder, address, timeout_s),
                timeout_s + SEND_MARGIN_S,
                "smtp-send",
            )
        except DeadlinePassed as exc:
            raise SendFailed(f"SMTP {self.host}:{self.port} timed out: {exc}") from None

    def _send(self, reminder: Reminder, address: Mailbox, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        with SocketWatchdog(timeout_s) as watchdog:
            try:
                return self._conversation(reminder, address, deadline, watchdog)
            except SendFailed as exc:
                if watchdog.fired:  # the shutdown is why the step failed
                    raise SendFailed(
                        f"SMTP {self.host}:{self.port} timed out after {timeout_s:g}s (the"
                        f" whole send's deadline; the connection was shut down): {exc}"
                    ) from None
                raise

    def _conversation(
        self, reminder: Reminder, address: Mailbox, deadline: float, watchdog: SocketWatchdog
    ) -> str:
        try:
            message = self.message(reminder, address)
            smtp = self._connect(deadline, watchdog)
            try:
                _step(smtp, deadline)
                # The envelope names the one validated mailbox, never what the To
                # header might be parsed into.
                smtp.send_message(message, to_addrs=[address.envelope])
            except BaseException:
                smtp.close()
                raise
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise SendFailed(
                f"SMTP refused {reminder.mentor_email}: {exc.recipients}",
                permanent=all(code >= 500 for code in codes),
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            # The configuration is wrong, not this reminder: retried until it is fixed.
            raise SendFailed(f"SMTP login refused: {exc.smtp_code} {exc.smtp_error!r}") from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if exc.smtp_error else ""
            raise SendFailed(
                f"SMTP {exc.smtp_code} {text}".strip(), permanent=exc.smtp_code >= 500
            ) from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timed out
            raise SendFailed(f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}") from None
        except ValueError as exc:  # a header retrying cannot fix (CR/LF)
            raise SendFailed(
                f"cannot write the email to mentor {reminder.mentor_id}: {exc}", permanent=True
            ) from None
        # The server accepted the message: a failed goodbye must not make it a failure
        # (that would send it again).
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
        return message["Message-ID"]

    def _connect(self, deadline: float, watchdog: SocketWatchdog) -> smtplib.SMTP:
        timeout_s = _left(deadline)
        smtp: _WatchedSMTP
        if self.security == "tls":
            smtp = _WatchedSMTPSSL(timeout=timeout_s, context=self.ssl_context)
        else:
            smtp = _WatchedSMTP(timeout=timeout_s)
        smtp.watchdog = watchdog
        smtp._host = self.host  # TLS's server_hostname; smtplib sets it only in __init__
        try:
            smtp.connect(self.host, self.port)
            if self.security == "starttls":
                _step(smtp, deadline)
                smtp.starttls(context=self.ssl_context)
            if self.username:
                _step(smtp, deadline)
                smtp.login(self.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def close(self) -> None:
        pass  # one connection per message: nothing held between sends
