"""Admin API bearer tokens: created once, stored as a hash, checked in constant time.

A token reads `rmd_<key id>_<secret>`. The key id is public and finds the row;
the secret (256 random bits) never leaves the caller: the database keeps the
sha256 of the whole token, and the check compares digests with
hmac.compare_digest. A high-entropy secret needs no salt or slow hash.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reminders_pipeline.db.connector import Database
from reminders_pipeline.errors import TokenError

log = logging.getLogger(__name__)

READ = "read"
CORRECT = "correct"
SCOPES = (READ, CORRECT)
TOKEN_PREFIX = "rmd"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
# Compared against when no row matches, so an unknown key costs the same as a wrong secret.
_DUMMY_HASH = hashlib.sha256(b"no such token").digest()


@dataclass(frozen=True)
class TokenIdentity:
    """Who a valid token belongs to."""

    name: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class TokenCheck:
    """The outcome of checking a presented token: an identity, or why not (never the token)."""

    identity: TokenIdentity | None
    failure: str | None = None
    # The presented key id names a real token (the secret was wrong, or it is revoked).
    key_exists: bool = False


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str, scopes: Iterable[str]) -> str:
        """Create a token and return it: the only time it is ever shown. The scopes
        are the CLI's choices (click.Choice), and the table's CHECK holds them to SCOPES."""
        if not _NAME.fullmatch(name):
            raise TokenError(
                f"token name {name!r} is not valid: 1-63 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        key_id = secrets.token_hex(8)
        token = f"{TOKEN_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        row = self.db.fetch_one(
            "admin_insert_token",
            token_name=name,
            key_id=key_id,
            token_hash=_hash(token),
            scopes=sorted(set(scopes)),
        )
        if row is None:
            # Names are never reused: the audit refers to tokens by name.
            raise TokenError(f"a token named {name!r} already exists (names are never reused)")
        return token

    def revoke(self, name: str) -> datetime:
        """Revoke a token by name; returns when it was revoked."""
        row = self.db.fetch_one("admin_revoke_token", token_name=name)
        if row is not None:
            return row["revoked_at"]
        existing = self.db.fetch_one("admin_token_by_name", token_name=name)
        if existing is None:
            raise TokenError(f"no token named {name!r}")
        raise TokenError(f"token {name!r} was already revoked at {existing['revoked_at']:%F %T%z}")

    def list(self) -> list[dict[str, Any]]:
        return self.db.fetch_all("admin_list_tokens")

    def authenticate(self, presented: str) -> TokenCheck:
        """Check a presented token. The result's failure never contains the token."""
        key_id = key_id_of(presented)
        if key_id is None:
            hmac.compare_digest(_hash(presented), _DUMMY_HASH)
            return TokenCheck(None, "malformed token")
        # One connection for the lookup and the use stamp: a request holds one at most.
        with self.db.connection() as conn:
            row = conn.one("admin_token_by_key", key_id=key_id)
            expected = bytes(row["token_hash"]) if row else _DUMMY_HASH
            matches = hmac.compare_digest(_hash(presented), expected)
            if row is None:
                return TokenCheck(None, "unknown token")
            if not matches:
                return TokenCheck(None, f"wrong secret for token {row['name']!r}", True)
            if row["revoked_at"] is not None:
                return TokenCheck(None, f"revoked token {row['name']!r}", True)
            conn.run("admin_token_used", id=row["id"])
        return TokenCheck(TokenIdentity(row["name"], frozenset(row["scopes"])))


def key_id_of(presented: str) -> str | None:
    """The key id a presented token names (not a secret), or None when malformed."""
    parts = presented.split("_", 2)
    key_id = parts[1] if len(parts) == 3 and parts[0] == TOKEN_PREFIX else ""
    return key_id if _KEY_ID.fullmatch(key_id) else None
