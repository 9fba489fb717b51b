"""One mailbox, never a list: every email address is checked by `email-validator`.

A mentor's address reaches the SMTP envelope (RCPT) and the To header. A value like
`m7@example.org, bcc@evil.example` or `m4@example.org>, <x@evil.example` (typed at
the CLI, or written into mentors.email by another application) must not add a
recipient: it is refused where it enters (`reminders mentor --email`) and again at
send time, where it makes the delivery dead, naming why, with nothing sent.
"""

from __future__ import annotations

from typing import NamedTuple


class InvalidAddress(ValueError):
    """Not exactly one mailbox; the message says why."""


class Mailbox(NamedTuple):
    normalized: str  # the domain lower-cased, Unicode as typed: stored, and in To
    envelope: str  # for RCPT: ASCII (the domain IDNA-encoded) when its local part is ASCII


def mailbox(value: str) -> Mailbox:
    """value as one mailbox; InvalidAddress for anything else: a list, a display name,
    angle brackets, quotes, CR/LF, spaces."""
    # Imported here: it (and idna) would slow the start of every command and run.
    from email_validator import EmailNotValidError, validate_email

    try:
        # No DNS lookups: an address is checked offline, where it is stored; the SMTP
        # server is the judge of deliverability. No display names, no quoted local parts.
        result = validate_email(
            value, check_deliverability=False, allow_display_name=False, allow_quoted_local=False
        )
    except EmailNotValidError as exc:
        raise InvalidAddress(f"{value!r} is not one email address: {exc}") from None
    return Mailbox(result.normalized, result.ascii_email or result.normalized)
