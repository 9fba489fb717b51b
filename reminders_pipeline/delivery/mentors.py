"""A mentor's own delivery settings: channels and language (NULL: the organisation's)."""

from __future__ import annotations

from typing import Any

from reminders_pipeline.db.connector import Database
from reminders_pipeline.delivery.address import InvalidAddress, mailbox
from reminders_pipeline.errors import ConfigError
from reminders_pipeline.settings.delivery import CHANNEL_NAMES, CHANNELS, LANGUAGES, parse_channels

DEFAULT = "default"  # back to the organisation's value


def parse_mentor_channels(value: str) -> list[str] | None:
    """`email,in_app` -> ['email', 'in_app']; `default` -> None."""
    if value.strip().lower() == DEFAULT:
        return None
    try:  # the rule of REMINDERS_CHANNELS, said in the CLI's terms
        return parse_channels(CHANNELS, value)
    except ConfigError:
        raise ConfigError(
            f"channels must be a comma list of {', '.join(CHANNEL_NAMES)} (or {DEFAULT}),"
            f" got {value!r}"
        ) from None


def configure_mentor(
    db: Database,
    mentor_id: int,
    *,
    channels: str | None = None,
    language: str | None = None,
    email: str | None = None,
) -> dict[str, Any]:
    """Set what is given; returns the mentor's row."""
    lang = None if language is None or language.lower() == DEFAULT else language.lower()
    if lang is not None and lang not in LANGUAGES:
        raise ConfigError(f"language must be one of {', '.join(LANGUAGES)} or {DEFAULT}")
    if email is not None:
        try:
            email = mailbox(email).normalized
        except InvalidAddress as exc:
            raise ConfigError(f"--email: {exc}; nothing was changed") from None
    row = db.fetch_one(
        "set_mentor_delivery",
        id=mentor_id,
        set_channels=channels is not None,
        channels=parse_mentor_channels(channels) if channels is not None else None,
        set_language=language is not None,
        language=lang,
        email=email,
    )
    if row is None:
        raise ConfigError(f"no mentor with id {mentor_id}")
    return row
