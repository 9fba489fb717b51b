"""One mailbox, never a list: every email address is checked by `email-validator`.

A mentor's address reaches the SMTP envelope (RCPT) and the To header. A value like
`m7@example.org, bcc@evil.example` or `m4@example.org>, <x@evil.example` (typed at
the CLI, or written into mentors.email by another application) must not add a
recipient: it is refused where it enters (`reminders mentor --email`) and again at
send time, where it makes the delivery dead, naming why, with nothing sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from email_validator import ValidatedEmail


class InvalidAddress(ValueError):
    """Not exactly one mailbox; the message says why."""


def _validated(value: str) -> ValidatedEmail:
    # Imported here: it (and idna) would slow the start of every command and run.
    from email_validator import EmailNotValidError, validate_email

    try:
        # No DNS lookups: an address is checked offline, where it is stored; the SMTP
        # server is the judge of deliverability. No display names, no quoted local parts.
        return validate_email(
            value, check_deliverability=False, allow_display_name=False, allow_quoted_local=False
        )
    except EmailNotValidError as exc:
        raise InvalidAddress(f"{value!r} is not one email address: {exc}") from None


def mailbox(value: str) -> str:
    """value as one normalised mailbox (the domain lower-cased, Unicode as typed);
    InvalidAddress for anything else: a list, a display name, angle brackets, quotes,
    CR/LF, spaces."""
    return _validated(value).normalized


def envelope_address(value: str) -> str:
    """The mailbox for RCPT: ASCII (the domain IDNA-encoded) when its local part is ASCII."""
    result = _validated(value)
    return result.ascii_email or result.normalized
