"""The embedded PostgreSQL, started from several threads at once (as the sensor daemon does)."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg

from reminders_pipeline.db import embedded as embedded_module
from reminders_pipeline.db.embedded import start_embedded
from reminders_pipeline.db.url import with_database


def test_threads_starting_the_embedded_server_together_share_one_server(tmp_path: Path):
    pgdata = tmp_path / "pgdata"
    urls: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        try:
            barrier.wait(10)
            urls.append(start_embedded(pgdata))
        except BaseException as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        assert len(set(urls)) == 1 and len(urls) == 4
        with psycopg.connect(with_database(urls[0], "postgres")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server = embedded_module._embedded_servers.pop(pgdata.resolve(), None)
        if server is not None:
            server.cleanup()
