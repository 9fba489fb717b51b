"""The admin API as operators run it: `reminders admin serve` (Granian) on a free port,
tokens made with `reminders admin create-token`, real HTTP, real PostgreSQL."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import psycopg
import pytest

from tests.helpers.admin_api import (
    LAST,
    TODAY,
    Server,
    bearer,
    create_token,
    make_assignment,
    serving,
)
from tests.helpers.data import db_rows
from tests.helpers.runs import wait_for

pytestmark = pytest.mark.acceptance


# A small pool with a short wait, so the bounds show within seconds.
SERVER_ENV = {
    "REMINDERS_ADMIN_POOL_MAX": "5",
    "REMINDERS_ADMIN_POOL_TIMEOUT_S": "1",
}


@pytest.fixture
def server(reminders_cli) -> Iterator[Server]:
    with serving(reminders_cli, SERVER_ENV) as server:
        yield server


def test_create_token_prints_it_once_and_keeps_only_its_hash(reminders_cli, db):
    done = reminders_cli("admin", "create-token", "ci", "--scope", "read", timeout=60)

    assert done.returncode == 0, done.describe()
    token = done.stdout.strip()
    assert token.startswith("rmd_") and len(token) > 50
    assert "shown only now" in done.stderr and token not in done.stderr
    [row] = db_rows(db, "SELECT name, scopes, token_hash FROM admin_tokens")
    assert (row["name"], row["scopes"]) == ("ci", ["read"])
    assert token.encode() not in bytes(row["token_hash"])


def test_token_commands_fail_with_one_line(reminders_cli):
    create_token(reminders_cli, "ci")
    again = reminders_cli("admin", "create-token", "ci", timeout=60)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        "error: a token named 'ci' already exists (names are never reused)"
    )
    unknown = reminders_cli("admin", "revoke-token", "nobody", timeout=60)
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "error: no token named 'nobody'")
    bad = reminders_cli("admin", "create-token", "no spaces", timeout=60)
    assert bad.returncode == 1 and bad.stderr.startswith("error: token name 'no spaces'")
    scope = reminders_cli("admin", "create-token", "x", "--scope", "root", timeout=60)
    assert scope.returncode == 2 and "'root' is not one of 'read', 'correct'" in scope.stderr


def test_the_served_api_authenticates_corrects_and_audits(server, reminders_cli, db):
    assignment = make_assignment(db)
    url = f"{server.base_url}/assignments/{assignment}/last-contact-date"
    body = {"last_contact_date": (TODAY - timedelta(days=1)).isoformat(), "reason": "phoned"}

    assert httpx.put(url, json=body).status_code == 401
    reader = create_token(reminders_cli, "reader", "read")
    assert httpx.put(url, json=body, headers=bearer(reader)).status_code == 403

    response = httpx.put(url, json=body, headers=bearer(server.token))
    assert response.status_code == 200, response.text
    assert response.json()["next_reminder_due_on"] == (TODAY + timedelta(days=9)).isoformat()
    [audit] = db_rows(db, "SELECT token_name, old_value, new_value, reason FROM admin_audit")
    assert audit == {
        "token_name": "ops",
        "old_value": LAST,
        "new_value": TODAY - timedelta(days=1),
        "reason": "phoned",
    }
    docs = httpx.get(f"{server.base_url}/docs")
    assert docs.status_code == 200 and "cdn." not in docs.text
    assert httpx.get(f"{server.base_url}/static-offline-docs/swagger-ui.css").status_code == 200
    assert httpx.get(f"{server.base_url}/openapi.json").json()["info"]["title"]


def test_a_revoked_token_is_refused_at_once(server, reminders_cli):
    headers = bearer(server.token)
    assert httpx.get(f"{server.base_url}/runs", headers=headers).status_code == 200
    done = reminders_cli("admin", "revoke-token", "ops", timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("revoked token 'ops' at ")
    response = httpx.get(f"{server.base_url}/runs", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid or revoked token"}


def test_two_concurrent_corrections_are_both_audited_and_the_last_one_wins(server, db_url, db):
    assignment = make_assignment(db)
    url = f"{server.base_url}/assignments/{assignment}/last-contact-date"
    days = {"first": TODAY - timedelta(days=4), "second": TODAY - timedelta(days=2)}
    responses: dict[str, httpx.Response] = {}

    def send(label: str) -> None:
        body = {"last_contact_date": days[label].isoformat(), "reason": label}
        responses[label] = httpx.put(url, json=body, headers=bearer(server.token), timeout=60)

    # Hold the assignment's row lock so both requests are in flight at once.
    with psycopg.connect(db_url) as holder:
        holder.execute("SELECT 1 FROM assignments WHERE id = %s FOR UPDATE", (assignment,))
        threads = [threading.Thread(target=send, args=(label,)) for label in days]
        for t in threads:
            t.start()
        wait_for(
            lambda: waiting_on_a_row_lock(db_url) >= 2,
            timeout=30,
            what="both corrections to wait on the assignment's row lock",
        )
        holder.commit()
    for t in threads:
        t.join(60)

    assert {label: r.status_code for label, r in responses.items()} == {
        "first": 200,
        "second": 200,
    }
    audits = db_rows(
        db,
        "SELECT reason, old_value, new_value FROM admin_audit WHERE assignment_id = %s ORDER BY id",
        (assignment,),
    )
    assert len(audits) == 2
    earlier, later = audits
    # Serialised: the later one saw (and audited) the value the earlier one left.
    assert earlier["old_value"] == LAST
    assert later["old_value"] == earlier["new_value"]
    final = db_rows(db, "SELECT last_contact_date FROM assignments WHERE id = %s", (assignment,))
    assert final[0]["last_contact_date"] == later["new_value"]
    assert responses[later["reason"]].json()["last_contact_date"] == later["new_value"].isoformat()


def waiting_on_a_row_lock(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()[0]


# ------------------------------------------------------------------ hardening


def test_a_held_row_lock_never_hangs_the_served_api(server, db_url, db):
    """45 corrections meet a row lock held elsewhere: each gets 409 or 503 with
    Retry-After within seconds, and /healthz answers meanwhile: before any correction's
    lock wait (2 s) has ended, however loaded the machine is."""
    assignment = make_assignment(db)
    url = f"{server.base_url}/assignments/{assignment}/last-contact-date"
    body = {"last_contact_date": (TODAY - timedelta(days=1)).isoformat(), "reason": "phoned"}
    answers: list[httpx.Response | Exception] = []
    lock_waits_ended: list[float] = []  # when each 409 (a lock wait that ran out) came back

    def send() -> None:
        try:
            answer = httpx.put(url, json=body, headers=bearer(server.token), timeout=20)
        except httpx.HTTPError as exc:
            answers.append(exc)
            return
        answers.append(answer)
        if answer.status_code == 409:
            lock_waits_ended.append(time.monotonic())

    with psycopg.connect(db_url) as holder:
        holder.execute("SELECT 1 FROM assignments WHERE id = %s FOR UPDATE", (assignment,))
        threads = [threading.Thread(target=send) for _ in range(45)]
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(0.3)
        health_started = time.monotonic()
        health = httpx.get(f"{server.base_url}/healthz", timeout=5)
        health_done = time.monotonic()
        health_s = health_done - health_started
        for t in threads:
            t.join(30)
        elapsed = time.monotonic() - started
        holder.rollback()

    # Not a wall-clock limit (a loaded machine answers anything slowly): /healthz must
    # have been answered while the corrections holding the pool still waited on the row.
    assert health.status_code == 200, health.status_code
    assert lock_waits_ended, "no correction waited on the row lock"
    assert health_done < min(lock_waits_ended), (health_s, min(lock_waits_ended) - health_started)
    statuses = sorted({a.status_code for a in answers if isinstance(a, httpx.Response)})
    assert len(answers) == 45 and set(statuses) <= {409, 503}, (statuses, answers[:3])
    assert all(a.headers.get("Retry-After") for a in answers if isinstance(a, httpx.Response))
    assert elapsed < 15, elapsed
    ok = httpx.put(url, json=body, headers=bearer(server.token), timeout=10)
    assert ok.status_code == 200
    log = server.child.errors()
    # One INFO line for the one correction that went through.
    assert log.count(f"corrected last_contact_date of assignment {assignment}:") == 1, log[-2000:]


def _raw_request(port: int, head: bytes, body: bytes = b"", timeout: float = 5) -> bytes:
    """Send a request head (and maybe part of a body); the server's answer, as bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with contextlib.suppress(OSError):  # the server may stop reading and answer first
            s.sendall(head + body)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                answer += chunk
        return answer


def test_limits_and_authentication_come_before_any_work(server, db):
    assignment = make_assignment(db)
    path = f"/assignments/{assignment}/last-contact-date".encode()

    started = time.monotonic()
    declared = _raw_request(
        server.port,
        b"PUT " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200000000\r\n\r\n",
        b"{" * 65536,
    )
    assert declared.startswith(b"HTTP/1.1 413"), declared[:200]
    huge = _raw_request(
        server.port,
        b"GET /runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer rmd_"
        + b"A" * 2_000_000
        + b"\r\n\r\n",
    )
    assert huge.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), huge[:200]
    assert time.monotonic() - started < 5
    big = httpx.get(f"{server.base_url}/runs", headers={"X-Padding": "p" * 20_000})
    assert big.status_code == 431
    unauthenticated = httpx.put(
        f"{server.base_url}{path.decode()}",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert unauthenticated.status_code == 401
    assert httpx.get(f"{server.base_url}/healthz").status_code == 200


def test_a_token_sent_anywhere_in_the_request_is_never_logged(server):
    secret = server.token
    for attempt in (
        f"/runs?access_token={secret}",
        f"/runs?limit=5&token={secret}",
        f"/assignments/{secret}",
        # The secret alone, or with its key id, as a path segment: no rmd_ to spot.
        f"/assignments/{secret.split('_', 2)[2]}",
        f"/runs/{secret.split('_', 1)[1]}",
    ):
        assert httpx.get(f"{server.base_url}{attempt}").status_code in (401, 404, 422)
    assert httpx.get(f"{server.base_url}/runs?status=failed", headers=bearer(secret)).is_success
    wait_for(lambda: "status=failed" in server.child.output(), timeout=10, what="the access log")
    log = server.child.output() + server.child.errors()
    assert secret.split("_", 2)[2] not in log
    assert "[redacted]" in log


def test_a_client_cannot_choose_its_address_or_write_a_log_line(server):
    """X-Forwarded-For is not trusted (any local client could pick its own address,
    and so its count of failed authentications), and a path cannot end a log line."""
    spoofed = {"X-Forwarded-For": "10.9.9.9"}
    assert httpx.get(f"{server.base_url}/runs", headers=spoofed).status_code == 401
    forged = "/runs%0AINFO:%20token%20'ops'%20corrected%20assignment%207"
    assert httpx.get(f"{server.base_url}{forged}").status_code == 401
    wait_for(
        lambda: server.child.errors().count("(401)") >= 2, timeout=10, what="the refusal lines"
    )
    log = server.child.output() + server.child.errors()
    assert "10.9.9.9" not in log
    assert "127.0.0.1" in log
    assert not any(line.startswith("INFO: token 'ops'") for line in log.splitlines())


def test_a_killed_server_takes_its_worker_with_it(server):
    """SIGKILL (or the OOM killer) on the server process leaves no worker holding the
    port and its database pool."""
    from pathlib import Path

    master = server.child.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert children, "the server runs its app in a worker process"
    worker = int(children[0])
    server.child.kill(signal.SIGKILL)

    def ended() -> bool:  # gone, or a zombie waiting for whoever adopted it
        try:
            return Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    wait_for(ended, timeout=15, what="the worker to end")
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0
