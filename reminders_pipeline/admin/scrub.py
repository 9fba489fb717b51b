"""Request targets fit for a log line: no token, wherever the client put it.

Used by the refusal log lines and by the server's access log (AccessLogScrubber).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, quote

# Query parameters the API has; every other value may be anything, a token too.
_KNOWN_QUERY = frozenset({"status", "limit", "offset", "assignment_id"})
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_.-]{0,32}")
_SECRET_SEGMENT = re.compile(r"rmd(_|%5f)", re.IGNORECASE)
# A token's secret sent alone (without `rmd_<key id>_`) is 43 characters of the
# URL-safe alphabet: any run of 16 or more such characters (percent escapes too)
# in a segment that is not one of the API's own words is taken for a secret.
_TOKEN_RUN = re.compile(r"[A-Za-z0-9_.~%-]{16,}")
_KNOWN_SEGMENTS = frozenset(
    {
        "last-contact-date",
        "oauth2-redirect",
        "static-offline-docs",
        "swagger-ui-bundle.js",
        "redoc.standalone.js",
        "swagger-ui.css",
    }
)
REDACTED = "[redacted]"
# Kept as they are in a logged path segment; everything else is percent-encoded.
_PATH_SAFE = "!$&'()*+,;=:@%"


def scrub_target(path: str, query: str = "") -> str:
    """Values of unknown query parameters, and path segments that look like a token,
    are replaced by [redacted]."""
    # Percent-encoded again: a decoded path may hold a line break or any text a
    # client wants in the log.
    segments = [
        REDACTED if _secret_shaped(s) else quote(s, safe=_PATH_SAFE) for s in path.split("/")
    ]
    clean = "/".join(segments)
    if not query:
        return clean
    pairs = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _KNOWN_QUERY:
            pairs.append(f"{REDACTED}={REDACTED}")
            continue
        pairs.append(f"{quote(key)}={value if _PLAIN_VALUE.fullmatch(value) else REDACTED}")
    return f"{clean}?{'&'.join(pairs)}"


def _secret_shaped(segment: str) -> bool:
    if segment in _KNOWN_SEGMENTS:
        return False
    return bool(_SECRET_SEGMENT.search(segment) or _TOKEN_RUN.search(segment))


class AccessLogScrubber(logging.Filter):
    """The server's access log line with the request target scrubbed (scrub_target):
    Granian's (a dict; `target` is added for the line's format) or uvicorn's."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, dict) and "path" in args:
            target = scrub_target(str(args["path"]), str(args.get("query_string") or ""))
            path, _, query = target.partition("?")
            record.args = dict(args, target=target, path=path, query_string=query)
            return True
        # uvicorn.access: (client, method, full_path, http_version, status)
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path, _, query = args[2].partition("?")
            record.args = (args[0], args[1], scrub_target(path, query), args[3], args[4])
        return True


def install_access_log_scrubber() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogScrubber) for f in access.filters):
        access.addFilter(AccessLogScrubber())
