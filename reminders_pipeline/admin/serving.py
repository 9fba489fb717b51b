"""How `reminders admin serve` runs the app: Granian, with bounded connections
(docs/decisions/admin-server.md) and a log configuration with our INFO lines and a
scrubbed access log.

Granian loads the app in its worker process by import path (`served_app`, a
factory), so everything the app needs comes from the environment, as for every
`reminders` command.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any

from fastapi import FastAPI

from reminders_pipeline.settings import AdminApiSettings

# The server stops reading a request head past this many bytes (the connection is
# closed), so a huge header costs neither time nor memory. Heads between the
# configured limit and this bound get the guard's clear 431.
HEAD_BUFFER_FACTOR = 8
# The access line: the request target is the scrubbed one (scrub.AccessLogScrubber).
ACCESS_FORMAT = '%(addr)s - "%(method)s %(target)s %(protocol)s" %(status)d %(dt_ms).1fms'


def served_app() -> FastAPI:
    """The app as the server's worker builds it (Granian's factory target)."""
    _end_with_the_server()
    from reminders_pipeline.admin.app import create_app
    from reminders_pipeline.db.schema_version import ensure_migrated_database_url
    from reminders_pipeline.settings import ReminderSettings

    return create_app(ensure_migrated_database_url(), ReminderSettings.from_env())


def _end_with_the_server() -> None:
    """Granian's worker outlives a server process that is killed (SIGKILL, OOM), and
    would keep the port and its database pool: on Linux, have the kernel end it too."""
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the server died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def log_config() -> dict[str, Any]:
    stream = {"class": "logging.StreamHandler", "formatter": "plain"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(levelname)s: %(message)s"}},
        "filters": {"scrub": {"()": "reminders_pipeline.admin.scrub.AccessLogScrubber"}},
        "handlers": {
            "default": {**stream, "stream": "ext://sys.stderr"},
            "access": {**stream, "stream": "ext://sys.stdout", "filters": ["scrub"]},
        },
        "loggers": {
            "_granian": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            # Corrections, refusals and database trouble: one line each on stderr.
            "reminders_pipeline": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }


def serve(host: str, port: int, limits: AdminApiSettings) -> None:
    """Serve the admin API until SIGTERM or SIGINT."""
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server

    Server(
        "reminders_pipeline.admin.serving:served_app",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
        websockets=False,
        # One process: the failed-authentication counts are the process's own.
        workers=1,
        # Connections served at once; the next ones wait in the kernel's backlog.
        backpressure=limits.max_connections,
        http1_settings=HTTP1Settings(
            # Counts from a connection's opening and from each answer: a head
            # trickled a byte at a time, and an idle keep-alive, end here.
            header_read_timeout=limits.head_timeout_s * 1000,
            max_buffer_size=max(limits.max_header_bytes * HEAD_BUFFER_FACTOR, 65_536),
        ),
        log_dictconfig=log_config(),
        log_access=True,
        log_access_format=ACCESS_FORMAT,
        workers_kill_timeout=10,
    ).serve()
