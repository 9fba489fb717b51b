"""Slow and idle clients against a real `reminders admin serve`, on real sockets.

The server runs with short bounds (a 2 s head timeout, a 2 s body timeout, 20
connections), so each bound shows within seconds; docs/decisions/admin-server.md
has the defaults and what was measured with them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.admin_api import Server, bearer, serving
from tests.helpers.runs import wait_for

pytestmark = pytest.mark.acceptance

HEAD_S = 2
BODY_S = 2
MAX_CONNECTIONS = 20
# What a bound may overrun by on a loaded machine (2 cores, the suite beside it).
SLACK_S = 2.0
SLOW_ENV = {
    "REMINDERS_ADMIN_HEAD_TIMEOUT_S": str(HEAD_S),
    "REMINDERS_ADMIN_BODY_TIMEOUT_S": str(BODY_S),
    "REMINDERS_ADMIN_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
}


@pytest.fixture
def server(reminders_cli) -> Iterator[Server]:
    with serving(reminders_cli, SLOW_ENV) as server:
        yield server


def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.settimeout(0.25)
    return sock


def _closed_within(sock: socket.socket, limit_s: float, drip: bytes = b"", every_s: float = 0.5):
    """Seconds until the server closes `sock` (sending `drip` every `every_s` s
    meanwhile), and what it sent; (None, data) when still open after `limit_s`."""
    started = last_drip = time.monotonic()
    received = b""
    while time.monotonic() - started < limit_s:
        if drip and time.monotonic() - last_drip >= every_s:
            try:
                sock.sendall(drip)
            except OSError:
                return time.monotonic() - started, received
            last_drip = time.monotonic()
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started, received
        if not data:
            return time.monotonic() - started, received
        received += data
    return None, received


def _descendant_fds(pid: int) -> int:
    """Open file descriptors of `pid` and every process under it (the worker)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += len(os.listdir(f"/proc/{current}/fd"))
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return total


def test_a_head_trickled_a_byte_at_a_time_is_closed_at_the_head_timeout(server):
    sock = _connect(server)
    sock.sendall(b"GET /runs HTTP/1.1\r\n")
    closed_after, _ = _closed_within(sock, HEAD_S + 10, drip=b"X", every_s=0.5)
    sock.close()
    print(f"trickled head closed after {closed_after} s")
    assert closed_after is not None, "a trickled head kept its connection"
    assert closed_after <= HEAD_S + SLACK_S


def test_silent_and_idle_connections_are_closed(server):
    silent = _connect(server)
    closed_after, _ = _closed_within(silent, HEAD_S + 10)
    silent.close()
    print(f"silent connection closed after {closed_after} s")
    assert closed_after is not None and closed_after <= HEAD_S + SLACK_S

    idle = _connect(server)
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    closed_after, answer = _closed_within(idle, HEAD_S + 10)
    idle.close()
    print(f"idle connection closed after {closed_after} s")
    assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
    assert closed_after is not None and closed_after <= HEAD_S + SLACK_S


def test_a_body_trickled_at_one_byte_a_second_gets_408_and_is_closed(server):
    sock = _connect(server)
    sock.sendall(
        b"PUT /assignments/1/last-contact-date HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 200\r\n"
        + f"Authorization: Bearer {server.token}\r\n\r\n".encode()
    )
    closed_after, answer = _closed_within(sock, BODY_S + 15, drip=b" ", every_s=1.0)
    sock.close()
    print(f"trickled body answered and closed after {closed_after} s")
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert closed_after is not None and closed_after <= BODY_S + SLACK_S
    wait_for(lambda: "(408)" in server.child.errors(), timeout=10, what="the 408 line")


def test_idle_connections_below_the_cap_never_slow_a_request(server):
    idle = [_connect(server) for _ in range(MAX_CONNECTIONS - 4)]
    try:
        time.sleep(0.5)
        for _ in range(5):
            started = time.monotonic()
            assert httpx.get(f"{server.base_url}/healthz", timeout=5).status_code == 200
            assert time.monotonic() - started < 1.0
            time.sleep(0.2)
    finally:
        for sock in idle:
            sock.close()


def test_a_flood_of_idle_connections_is_bounded_and_a_request_still_served(server):
    """Three times the cap: the server holds at most the cap (the rest wait in the
    listen backlog), drops them at the head timeout, and a real request is served
    once its turn comes, within (flood / cap + 1) head timeouts."""
    baseline = _descendant_fds(server.child.pid)
    flood = [_connect(server) for _ in range(3 * MAX_CONNECTIONS)]
    try:
        time.sleep(0.5)
        held = _descendant_fds(server.child.pid) - baseline
        assert held <= MAX_CONNECTIONS + 5, held
        started = time.monotonic()
        answer = httpx.get(
            f"{server.base_url}/runs", headers=bearer(server.token), timeout=30
        ).status_code
        waited = time.monotonic() - started
        print(f"{held} descriptors held by the flood; a request waited {waited:.2f} s")
        assert answer == 200
        assert waited <= (3 + 1) * HEAD_S + SLACK_S, waited
    finally:
        for sock in flood:
            sock.close()
