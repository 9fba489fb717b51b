"""How `reminders admin serve` runs uvicorn: a parser that bounds the request head,
and a log configuration with our INFO lines and a scrubbed access log."""

from __future__ import annotations

import copy
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from reminders_pipeline.settings import AdminApiSettings

# h11 stops reading a request head past this many bytes (400, connection closed),
# so a huge header costs neither time nor memory. Heads between the configured
# limit and this bound get the guard's clear 431.
HEAD_BUFFER_FACTOR = 8


def uvicorn_options(limits: AdminApiSettings) -> dict[str, Any]:
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["filters"] = {
        "scrub": {"()": "reminders_pipeline.admin.guard.AccessLogScrubber"},
    }
    log_config["handlers"]["access"]["filters"] = ["scrub"]
    # Corrections, refusals and database trouble: one line each on stderr.
    log_config["loggers"]["reminders_pipeline"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    return {
        # httptools buffers a head of any size; h11 has a bound.
        "http": "h11",
        "h11_max_incomplete_event_size": limits.max_header_bytes * HEAD_BUFFER_FACTOR,
        "log_config": log_config,
        "log_level": "info",
        # The client is the peer's address: X-Forwarded-For would let any local
        # client choose its own address (and so its failed-authentication count)
        # and write what it likes into the log lines that name the client.
        "proxy_headers": False,
    }
