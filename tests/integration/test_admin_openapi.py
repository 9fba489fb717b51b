"""The published OpenAPI document tells a client the API's rules: standard bounds
(minimum/maximum, which a schema-driven client honours) and every status a route
can answer."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from reminders_pipeline.admin.app import create_app
from tests.helpers.admin_api import FAST, SETTINGS, bearer, make_tokens

# What any route needing a token can answer besides its own: the guard's refusals
# (a bad or too large head or body, a slow body), the token's (401, 403, 429) and
# the database's behind the token check (409 a locked row, 503 busy or away).
TOKEN_STATUSES = {"400", "401", "403", "408", "409", "413", "429", "431", "503"}


@pytest.fixture
def schema(db_url) -> dict[str, Any]:
    with TestClient(create_app(db_url, SETTINGS, FAST)) as client:
        return client.get("/openapi.json").json()


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


def _integers(parameter: dict[str, Any]) -> list[dict[str, Any]]:
    schema = parameter["schema"]
    return [s for s in [schema, *schema.get("anyOf", [])] if s.get("type") == "integer"]


def test_bounds_are_published_as_minimum_and_maximum(schema):
    assert not {"ge", "le", "gt", "lt"} & _keys(schema["paths"])
    bounds = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                for integer in _integers(parameter):
                    assert "minimum" in integer and "maximum" in integer, (path, parameter)
                    bounds[(method, path, parameter["name"])] = (
                        integer["minimum"],
                        integer["maximum"],
                    )
    assert bounds[("get", "/assignments/{assignment_id}", "assignment_id")] == (1, 2**63 - 1)
    assert bounds[("get", "/runs", "limit")] == (1, 500)
    assert bounds[("get", "/audit", "offset")] == (0, 1_000_000_000)


def test_every_status_a_route_can_answer_is_published(schema):
    paths = schema["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            published = set(operation["responses"])
            if path == "/healthz":
                assert published >= {"200", "400", "408", "413", "431", "503"}
                continue
            assert published >= TOKEN_STATUSES, (method, path, TOKEN_STATUSES - published)
            if "{assignment_id}" in path:
                assert {"404", "422"} <= published, (method, path)
            for status in published - {"200"}:
                assert operation["responses"][status]["description"], (method, path, status)


def test_a_value_outside_the_published_bounds_is_what_gets_422(db, db_url, schema):
    """The published minimum is the validated one: 0 is out of the schema and 422."""
    [parameter] = schema["paths"]["/assignments/{assignment_id}"]["get"]["parameters"]
    assert parameter["schema"]["minimum"] == 1
    tokens = make_tokens(db)
    with TestClient(create_app(db_url, SETTINGS, FAST)) as client:
        assert client.get("/assignments/0", headers=bearer(tokens["reader"])).status_code == 422
        assert client.get("/assignments/1", headers=bearer(tokens["reader"])).status_code == 404
        over = client.get("/runs?limit=501", headers=bearer(tokens["reader"]))
        assert over.status_code == 422
