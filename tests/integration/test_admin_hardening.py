"""The admin API holds every wait and every input to a bound, and checks the token
first: a held row lock, a full pool, oversized or malformed requests, guessing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import make_conninfo

from reminders_pipeline.admin.app import create_app
from reminders_pipeline.admin.scrub import AccessLogScrubber, scrub_target
from reminders_pipeline.admin.tokens import key_id_of
from reminders_pipeline.db.pool import PooledDatabase
from tests.helpers.admin_api import FAST, SETTINGS, TODAY, bearer, make_assignment, make_tokens


@pytest.fixture
def tokens(db) -> dict[str, str]:
    return make_tokens(db)


@pytest.fixture
def client(db_url) -> Iterator[TestClient]:
    with TestClient(create_app(db_url, SETTINGS, FAST)) as client:
        yield client


def put(client, assignment_id, token, **body):
    body.setdefault("last_contact_date", (TODAY - timedelta(days=1)).isoformat())
    body.setdefault("reason", "phoned")
    return client.put(
        f"/assignments/{assignment_id}/last-contact-date", json=body, headers=bearer(token)
    )


def held_row(db_url: str, assignment_id: int) -> psycopg.Connection:
    conn = psycopg.connect(db_url)
    conn.execute("SELECT 1 FROM assignments WHERE id = %s FOR UPDATE", (assignment_id,))
    return conn


# ------------------------------------------------------------------ bounded waits


def test_a_held_row_lock_gives_409_with_retry_after_within_the_lock_timeout(
    client, db, db_url, tokens
):
    assignment = make_assignment(db)
    with held_row(db_url, assignment):
        started = time.monotonic()
        response = put(client, assignment, tokens["both"])
        waited = time.monotonic() - started
    assert response.status_code == 409, response.text
    assert response.headers["Retry-After"] == "1"
    assert "being changed by another transaction" in response.json()["detail"]
    assert waited < 3
    assert put(client, assignment, tokens["both"]).status_code == 200


def test_an_exhausted_pool_is_a_clear_503_and_healthz_still_answers(db, db_url, tokens):
    assignment = make_assignment(db)
    one = replace(FAST, pool_max=1, lock_timeout_ms=3000)
    with TestClient(create_app(db_url, SETTINGS, one)) as client, held_row(db_url, assignment):
        stuck: list[int] = []
        holder = threading.Thread(
            target=lambda: stuck.append(put(client, assignment, tokens["both"]).status_code)
        )
        holder.start()
        time.sleep(0.5)  # the only connection now waits on the row lock
        response = client.get("/runs", headers=bearer(tokens["reader"]))
        started = time.monotonic()
        health = client.get("/healthz")
        assert time.monotonic() - started < 1
        holder.join(10)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert "every database connection of the admin API is busy" in response.json()["detail"]
    assert health.status_code == 200
    assert stuck == [409]


# ------------------------------------------------------------------ before any work


def test_without_a_token_a_malformed_body_is_401_not_422(client, db):
    response = client.put(
        f"/assignments/{make_assignment(db)}/last-contact-date",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401
    assert response.json()["detail"].startswith("missing bearer token")


def test_a_reader_token_is_403_before_its_body_is_read(client, db, tokens):
    response = client.put(
        f"/assignments/{make_assignment(db)}/last-contact-date",
        content=b"{not json",
        headers={**bearer(tokens["reader"]), "Content-Type": "application/json"},
    )
    assert response.status_code == 403


def test_a_body_over_the_limit_is_413_with_or_without_a_token(client, db, tokens):
    assignment = make_assignment(db)
    big = b'{"reason": "' + b"x" * FAST.max_body_bytes + b'"}'
    url = f"/assignments/{assignment}/last-contact-date"
    assert client.put(url, content=big).status_code == 413
    declared = client.put(url, content=big, headers=bearer(tokens["both"]))
    assert declared.status_code == 413
    assert declared.json() == {"detail": f"request body exceeds {FAST.max_body_bytes} bytes"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it comes
        yield big[:1000]
        yield big[1000:]

    chunked = client.put(url, content=chunks(), headers=bearer(tokens["both"]))
    assert chunked.status_code == 413


def test_headers_over_the_limit_are_431(client, tokens):
    response = client.get(
        "/runs", headers={**bearer(tokens["reader"]), "X-Padding": "p" * FAST.max_header_bytes}
    )
    assert response.status_code == 431
    huge_token = client.get("/runs", headers=bearer("rmd_" + "A" * 20_000))
    assert huge_token.status_code == 431


def test_failures_turn_401_into_429_per_address_but_never_refuse_a_valid_token(db_url, tokens):
    limits = replace(FAST, auth_failures_per_minute=3)
    guess = "rmd_0123456789abcdef_x"
    app = create_app(db_url, SETTINGS, limits)
    with TestClient(app, client=("10.0.0.1", 5000)) as client:
        for _ in range(3):
            assert client.get("/runs", headers=bearer(guess)).status_code == 401
        refused = client.get("/runs", headers=bearer(guess))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # No token, or a malformed one: nothing to verify, refused before any work.
        assert client.get("/runs").status_code == 429
        assert client.get("/runs", headers=bearer("not-a-token")).status_code == 429
        # Every valid token is served from that very address, one never used on this
        # server process too (as after a restart), while the failures go on.
        for _ in range(3):
            assert client.get("/runs", headers=bearer(guess)).status_code == 429
            for name in ("both", "reader"):
                assert client.get("/runs", headers=bearer(tokens[name])).status_code == 200
        # A revoked token is still a failure.
        assert client.get("/runs", headers=bearer(tokens["revoked"])).status_code == 429
        # Made-up key ids counted against 10.0.0.1 only: another address is not limited.
        other = TestClient(app, client=("10.0.0.2", 5000))  # the same app, its lifespan above
        assert other.get("/runs", headers=bearer(guess)).status_code == 401


def test_wrong_secrets_for_a_real_key_limit_guesses_at_it_never_its_holder(db_url, tokens):
    limits = replace(FAST, auth_failures_per_minute=3)
    wrong = f"rmd_{key_id_of(tokens['reader'])}_wrong"
    app = create_app(db_url, SETTINGS, limits)
    with TestClient(app, client=("10.0.0.1", 5000)) as attacker:
        for _ in range(3):
            assert attacker.get("/runs", headers=bearer(wrong)).status_code == 401
        elsewhere = TestClient(app, client=("10.0.0.3", 5000))  # the same app
        # The key's count holds from any address, for guesses...
        refused = elsewhere.get("/runs", headers=bearer(wrong))
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        # ...and the real secret is served, as are other keys.
        assert elsewhere.get("/runs", headers=bearer(tokens["reader"])).status_code == 200
        assert elsewhere.get("/runs", headers=bearer(tokens["both"])).status_code == 200
        assert attacker.get("/runs", headers=bearer(tokens["reader"])).status_code == 200
        assert attacker.get("/healthz").status_code == 200


def test_the_failure_counts_are_bounded_by_addresses_and_real_keys(db_url, tokens):
    """Made-up key ids make no count of their own: memory does not grow with them."""
    app = create_app(db_url, SETTINGS, replace(FAST, auth_failures_per_minute=1000))
    with TestClient(app, client=("10.0.0.1", 5000)) as client:
        for n in range(50):
            assert client.get("/runs", headers=bearer(f"rmd_{n:016x}_x")).status_code == 401
        assert (
            client.get("/runs", headers=bearer(f"rmd_{key_id_of(tokens['reader'])}_x")).status_code
            == 401
        )
    storage = app.state.services.auth_failures._limiter.storage
    assert len(storage.events) == 2  # the address, the real key


def test_a_logged_path_cannot_forge_a_log_line():
    forged = "/runs\nINFO: token 'ops' corrected last_contact_date of assignment 7"
    clean = scrub_target(forged)
    assert "\n" not in clean and "\r" not in scrub_target("/runs\r\nx")
    assert clean.startswith("/runs%0AINFO:%20token%20") or clean == "/[redacted]"
    assert scrub_target("/runs\nINFO: done").startswith("/runs%0AINFO:%20done")
    # What uvicorn already percent-encodes stays as it is.
    assert scrub_target("/assignments/1%0A") == "/assignments/1%0A"


# ------------------------------------------------------------------ the token is never logged


def test_the_access_log_never_shows_a_token_from_the_target():
    token = "rmd_0123456789abcdef_s3cr3tS3cr3tS3cr3t"
    for target, query in [
        ("/runs", f"access_token={token}"),
        ("/runs", f"limit=5&token={token}"),
        ("/runs", f"status={token}"),
        (f"/assignments/{token}", ""),
        (f"/assignments/{token.replace('_', '%5F')}", ""),
        # A secret without its prefix: any token-shaped segment.
        ("/assignments/s3cr3tS3cr3tS3cr3t", ""),
        ("/runs/0123456789abcdef_s3cr3tS3cr3tS3cr3t", ""),
        ("/assignments/s3cr3tS3cr3tS3cr3t/last-contact-date", ""),
    ]:
        assert "s3cr3t" not in scrub_target(target, query), (target, query)
    assert scrub_target("/runs", "status=failed&limit=5") == "/runs?status=failed&limit=5"
    # The API's own words stay readable.
    assert scrub_target("/assignments/12/last-contact-date") == "/assignments/12/last-contact-date"
    assert scrub_target("/static-offline-docs/swagger-ui-bundle.js").endswith("bundle.js")
    record = __import__("logging").LogRecord(
        "uvicorn.access",
        20,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/runs?token={token}", "1.1", 401),
        None,
    )
    AccessLogScrubber().filter(record)
    assert token not in record.getMessage()


# ------------------------------------------------------------------ smaller findings


@pytest.mark.parametrize("raw", ["1.0", "+1", "%201", "1%20", "01", "1_0", "%2B1", "1e0"])
def test_an_id_is_digits_only(client, db, tokens, raw):
    assert make_assignment(db) == 1
    response = client.get(f"/assignments/{raw}", headers=bearer(tokens["reader"]))
    assert response.status_code == 422, (raw, response.text)


@pytest.mark.parametrize("query", ["limit=1.0", "offset=+1", "assignment_id=%201", "limit=1_0"])
def test_numbers_in_the_query_are_digits_only(client, tokens, query):
    response = client.get(f"/audit?{query}", headers=bearer(tokens["reader"]))
    assert response.status_code == 422, (query, response.text)


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("  " + "x" * 500 + "  ", 200),  # trimmed before its length is checked
        ("x" * 501, 422),
        ("paid \u202eevil", 422),  # right-to-left override
        ("a\u2066b", 422),  # left-to-right isolate
        ("zero\u200bwidth", 422),
        ("join\u200dme", 422),
        ("\ufeffbom", 422),
        ("line\nbreak", 422),
        ("tab\there", 422),
        ("café ☎ 電話", 200),
    ],
)
def test_a_reason_is_trimmed_then_one_line_of_visible_text(client, db, tokens, reason, status):
    response = put(client, make_assignment(db), tokens["both"], reason=reason)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["correction"]["reason"] == reason.strip()


def test_a_closed_assignment_is_refused_unless_allowed_and_a_paused_one_is_corrected(
    client, db, tokens
):
    closed = make_assignment(db, status="closed")
    refused = put(client, closed, tokens["both"])
    assert refused.status_code == 409
    assert "closed" in refused.json()["detail"] and "allow_closed" in refused.json()["detail"]
    assert put(client, closed, tokens["both"], allow_closed=True).status_code == 200
    assert put(client, make_assignment(db, status="paused"), tokens["both"]).status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/runs", "/lock", "/audit", "/assignments/1"])
def test_head_answers_every_get_route_without_a_body(client, db, tokens, path):
    make_assignment(db)
    get = client.get(path, headers=bearer(tokens["reader"]))
    head = client.head(path, headers=bearer(tokens["reader"]))
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == get.headers["content-length"]


def test_docs_are_served_from_the_installed_package_not_a_cdn(client, db_url):
    page = client.get("/docs").text
    assert "cdn." not in page and "/static-offline-docs/swagger-ui-bundle.js" in page
    asset = client.get("/static-offline-docs/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000
    with TestClient(create_app(db_url, SETTINGS, replace(FAST, docs=False))) as off:
        assert off.get("/docs").status_code == 404


def test_the_pool_keeps_the_urls_own_options_beside_its_timeouts(db_url):
    """`options=-c role=...` in the URL (how docs/operations.md runs a command as a
    role) still applies: the pool's timeouts are added to it, not put in its place."""
    url = make_conninfo(db_url, options="-c role=reminders_job -c search_path=public")
    pool = PooledDatabase(
        url, max_size=1, pool_timeout_s=5, lock_timeout_ms=1234, statement_timeout_ms=5678
    )
    try:
        with pool.connection() as session:
            row = session.raw.execute(
                "SELECT current_user AS who, current_setting('lock_timeout') AS lock,"
                " current_setting('statement_timeout') AS statement"
            ).fetchone()
    finally:
        pool.close()
    assert tuple(row.values()) == ("reminders_job", "1234ms", "5678ms")
