"""The admin API against real PostgreSQL, through FastAPI's test client."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from reminders_pipeline.admin.app import create_app
from reminders_pipeline.contacts.activities import ContactRegistrationService
from reminders_pipeline.core.lock import RunLock
from reminders_pipeline.core.services import build_reminder_run
from reminders_pipeline.db.lock_keys import LOCK_KEY
from tests.helpers.admin_api import (
    FAST,
    LAST,
    SETTINGS,
    STARTED,
    TODAY,
    bearer,
    make_assignment,
    make_tokens,
)
from tests.helpers.data import db_rows


@pytest.fixture
def tokens(db) -> dict[str, str]:
    return make_tokens(db)


@pytest.fixture
def client(db_url) -> Iterator[TestClient]:
    with TestClient(create_app(db_url, SETTINGS)) as client:  # closes the app's pools
        yield client


@pytest.fixture
def assignment(db) -> int:
    return make_assignment(db)


def correct(client, assignment_id, token, day=None, reason="mentor phoned on that day"):
    return client.put(
        f"/assignments/{assignment_id}/last-contact-date",
        json={
            "last_contact_date": (day or TODAY - timedelta(days=2)).isoformat(),
            "reason": reason,
        },
        headers=bearer(token) if token else {},
    )


# ------------------------------------------------------------------ auth matrix

READS = ["/assignments/{id}", "/runs", "/lock", "/audit"]


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize(
    ("who", "status"),
    [
        (None, 401),
        ("revoked", 401),
        ("forged", 401),
        ("corrector", 403),
        ("reader", 200),
        ("both", 200),
    ],
)
def test_read_endpoints_auth_matrix(client, tokens, assignment, path, who, status):
    headers = {}
    if who == "forged":
        # A real key id with a wrong secret.
        real = tokens["reader"]
        headers = bearer(real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB"))
    elif who:
        headers = bearer(tokens[who])
    response = client.get(path.format(id=assignment), headers=headers)
    assert response.status_code == status, response.text
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["detail"]
    if status == 403:
        assert response.json()["detail"] == "token 'corrector' lacks the 'read' scope"


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 401), ("revoked", 401), ("reader", 403), ("corrector", 200), ("both", 200)],
)
def test_correction_auth_matrix(client, db, tokens, assignment, who, status):
    response = correct(client, assignment, tokens.get(who))
    assert response.status_code == status, response.text
    audited = db_rows(db, "SELECT count(*) AS n FROM admin_audit")[0]["n"]
    assert audited == (1 if status == 200 else 0)


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-token", "Bearer rmd_zz_zz", "Token abc"],
)
def test_malformed_authorization_is_401(client, header):
    response = client.get("/runs", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["detail"]


def test_healthz_needs_no_token(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_failed_attempts_are_logged_without_the_token(client, tokens, caplog):
    forged = tokens["reader"][:-4] + "XXXX"
    with caplog.at_level(logging.WARNING, logger="reminders_pipeline.admin"):
        client.get("/runs", headers=bearer(forged))
        client.get("/runs", headers=bearer(tokens["revoked"]))
        client.get("/runs", headers=bearer(tokens["corrector"]))
    text = caplog.text
    assert "wrong secret for token 'reader'" in text
    assert "revoked token 'old'" in text
    assert "lacks scope 'read'" in text
    for secret in (forged, tokens["revoked"], tokens["corrector"]):
        assert secret not in text
        assert secret.split("_", 2)[2] not in text


def test_tokens_are_stored_only_as_hashes(db, tokens):
    stored = db_rows(db, "SELECT * FROM admin_tokens")
    dumped = repr(stored)
    for token in tokens.values():
        assert token.split("_", 2)[2] not in dumped
    assert all(len(bytes(r["token_hash"])) == 32 for r in stored)


def test_a_used_token_records_when(client, db, tokens):
    client.get("/runs", headers=bearer(tokens["reader"]))
    used = db_rows(db, "SELECT name FROM admin_tokens WHERE last_used_at IS NOT NULL")
    assert [r["name"] for r in used] == ["reader"]


# ------------------------------------------------------------------ the correction


def test_a_correction_writes_the_date_and_its_audit_and_returns_the_next_due_date(
    client, db, tokens, assignment
):
    new = TODAY - timedelta(days=3)
    response = correct(client, assignment, tokens["corrector"], new, "  phoned, not logged  ")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["last_contact_date"] == new.isoformat()
    assert body["next_reminder_due_on"] == (new + timedelta(days=10)).isoformat()
    assert body["correction"]["old_value"] == LAST.isoformat()
    assert body["correction"]["reason"] == "phoned, not logged"
    assert body["correction"]["token_name"] == "corrector"
    [audit] = db_rows(db, "SELECT * FROM admin_audit")
    assert (audit["token_name"], audit["assignment_id"]) == ("corrector", assignment)
    assert (audit["old_value"], audit["new_value"]) == (LAST, new)
    assert audit["reason"] == "phoned, not logged"
    assert audit["at"] is not None
    # And the database agrees.
    assert db_rows(db, "SELECT last_contact_date FROM assignments")[0]["last_contact_date"] == new


def test_a_corrected_assignment_is_not_reminded_in_the_next_run(client, db_url, db, tokens):
    silent = make_assignment(db)
    correct(client, silent, tokens["corrector"], TODAY - timedelta(days=1))
    summary = build_reminder_run(db_url, SETTINGS).execute(TODAY)
    assert (summary.status, summary.created) == ("success", 0)


def test_a_later_activity_moves_a_corrected_date_forward_and_the_audit_keeps_the_manual_value(
    client, db, tokens, assignment
):
    manual = TODAY - timedelta(days=5)
    correct(client, assignment, tokens["corrector"], manual)
    service = ContactRegistrationService(db, SETTINGS)

    service.register_proxy(assignment, TODAY - timedelta(days=8), registered_by="x")
    view = client.get(f"/assignments/{assignment}", headers=bearer(tokens["reader"])).json()
    assert view["last_contact_date"] == manual.isoformat()  # an older contact does not undo it

    service.register_proxy(assignment, TODAY - timedelta(days=1), registered_by="x")
    view = client.get(f"/assignments/{assignment}", headers=bearer(tokens["reader"])).json()
    assert view["last_contact_date"] == (TODAY - timedelta(days=1)).isoformat()
    assert [c["new_value"] for c in view["recent_corrections"]] == [manual.isoformat()]
    [audit] = db_rows(db, "SELECT new_value FROM admin_audit")
    assert audit["new_value"] == manual


def test_unknown_assignment_is_404_and_names_it(client, tokens):
    response = correct(client, 424242, tokens["both"])
    assert response.status_code == 404
    assert response.json() == {"detail": "assignment 424242 does not exist"}
    response = client.get("/assignments/424242", headers=bearer(tokens["both"]))
    assert response.status_code == 404
    assert "424242" in response.json()["detail"]


def field_errors(response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["message"]
    return {e["loc"][-1]: e["msg"] for e in body["detail"]}


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"last_contact_date": "2026-13-01", "reason": "r"}, "last_contact_date", "date"),
        ({"last_contact_date": "1 May 2026", "reason": "r"}, "last_contact_date", "YYYY-MM-DD"),
        ({"last_contact_date": 1700000000, "reason": "r"}, "last_contact_date", "YYYY-MM-DD"),
        ({"reason": "r"}, "last_contact_date", "required"),
        ({"last_contact_date": "2026-01-01"}, "reason", "required"),
        ({"last_contact_date": "2026-01-01", "reason": ""}, "reason", "at least 1"),
        ({"last_contact_date": "2026-01-01", "reason": "   "}, "reason", "required"),
        ({"last_contact_date": "2026-01-01", "reason": "x" * 501}, "reason", "at most 500"),
        ({"last_contact_date": "2026-01-01", "reason": "a\x00b"}, "reason", "control"),
        ({"last_contact_date": "2026-01-01", "reason": "r", "extra": 1}, "extra", "not permitted"),
    ],
)
def test_an_invalid_body_is_422_naming_the_field(client, tokens, assignment, body, field, says):
    response = client.put(
        f"/assignments/{assignment}/last-contact-date", json=body, headers=bearer(tokens["both"])
    )
    errors = field_errors(response)
    assert field in errors
    assert says.lower() in errors[field].lower()


def test_a_future_date_is_422(client, tokens, assignment):
    errors = field_errors(correct(client, assignment, tokens["both"], TODAY + timedelta(days=1)))
    assert errors == {"last_contact_date": f"must not be in the future (today is {TODAY})"}


def test_a_date_before_the_assignment_started_is_422(client, db, tokens, assignment):
    response = correct(client, assignment, tokens["both"], STARTED - timedelta(days=1))
    assert field_errors(response) == {
        "last_contact_date": f"must not be before the assignment started ({STARTED})"
    }
    assert db_rows(db, "SELECT count(*) AS n FROM admin_audit")[0]["n"] == 0


def test_a_body_that_is_not_json_is_422(client, tokens, assignment):
    response = client.put(
        f"/assignments/{assignment}/last-contact-date",
        content=b"{not json",
        headers={**bearer(tokens["both"]), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["message"]


@pytest.mark.parametrize(
    "path", ["/assignments/0", "/assignments/abc", "/assignments/99999999999999999999"]
)
def test_an_invalid_assignment_id_is_422_naming_it(client, tokens, path):
    response = client.get(path, headers=bearer(tokens["both"]))
    assert "assignment_id" in field_errors(response)


# ------------------------------------------------------------------ reads


def test_get_assignment_shows_last_contact_next_due_and_recent_reminders(
    client, db_url, db, tokens, assignment
):
    build_reminder_run(db_url, SETTINGS).execute(TODAY)
    body = client.get(f"/assignments/{assignment}", headers=bearer(tokens["reader"])).json()
    assert body["last_contact_date"] == LAST.isoformat()
    assert body["reminder_interval_days"] == 10 and body["interval_is_default"]
    # 30 days silent, three reminders per silence: the third was created today, nothing next.
    assert body["next_reminder_due_on"] is None
    assert body["current_reminder"] == {
        "sequence": 3,
        "due_on": (LAST + timedelta(days=30)).isoformat(),
        "created": True,
    }
    [reminder] = body["recent_reminders"]
    assert reminder["sequence"] == 3


def test_runs_are_listed_filtered_and_paginated(client, db_url, tokens):
    for day in range(3):
        build_reminder_run(db_url, SETTINGS).execute(TODAY - timedelta(days=day))
    headers = bearer(tokens["reader"])
    first = client.get("/runs?limit=2", headers=headers).json()
    assert [r["status"] for r in first["items"]] == ["success", "success"]
    assert first["next_offset"] == 2
    second = client.get("/runs?limit=2&offset=2", headers=headers).json()
    assert len(second["items"]) == 1 and second["next_offset"] is None
    assert client.get("/runs?status=failed", headers=headers).json()["items"] == []
    assert "status" in field_errors(client.get("/runs?status=bogus", headers=headers))
    assert "limit" in field_errors(client.get("/runs?limit=0", headers=headers))


def test_lock_is_free_or_names_its_holder(client, db_url, tokens):
    headers = bearer(tokens["reader"])
    assert client.get("/lock", headers=headers).json() == {
        "lock_key": list(LOCK_KEY),
        "held": False,
        "holder": None,
    }
    with RunLock(db_url, "run-abc") as lock:
        assert lock.try_acquire()
        pid = lock.backend_pid
        body = client.get("/lock", headers=headers).json()
    assert body["held"] is True
    assert body["holder"]["run_id"] == "run-abc"
    assert body["holder"]["pid"] == pid


def test_audit_is_paginated_newest_first(client, db, tokens, assignment):
    other = make_assignment(db)
    for i, a in enumerate([assignment, other, assignment]):
        correct(client, a, tokens["corrector"], TODAY - timedelta(days=i), f"fix {i}")
    headers = bearer(tokens["reader"])
    page = client.get("/audit?limit=2", headers=headers).json()
    assert [e["reason"] for e in page["items"]] == ["fix 2", "fix 1"]
    assert page["next_offset"] == 2
    rest = client.get("/audit?limit=2&offset=2", headers=headers).json()
    assert [e["reason"] for e in rest["items"]] == ["fix 0"]
    only = client.get(f"/audit?assignment_id={other}", headers=headers).json()
    assert [e["reason"] for e in only["items"]] == ["fix 1"]


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "/assignments/{assignment_id}/last-contact-date" in schema["paths"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_a_database_outage_is_503_not_500(tokens):
    app = create_app("postgresql://nobody@127.0.0.1:1/none", SETTINGS, FAST)
    with TestClient(app) as client:
        health = client.get("/healthz")
        published = client.get("/openapi.json").json()["paths"]["/healthz"]["get"]["responses"]
        response = client.get("/runs", headers=bearer(tokens["reader"]))
    assert health.status_code == 503
    assert health.json() == {"status": "unavailable", "database": "unreachable"}
    # ...and the published document says that body, not the guard's {"detail": ...}.
    assert published["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Health"
    }
    assert response.status_code == 503
    assert response.json() == {"detail": "the reminders database is unavailable"}
