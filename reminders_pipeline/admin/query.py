"""Unknown query parameters are a 422, not silently ignored.

A client that misspells `limit` would otherwise get the default page and never
know; and a schema-driven client (or schemathesis) reads an ignored parameter as
invalid input accepted. Each route takes exactly the query parameters it declares.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


def _query_names(dependant: Dependant) -> Iterator[str]:
    yield from (field.alias for field in dependant.query_params)
    for sub in dependant.dependencies:
        yield from _query_names(sub)


def reject_unknown_query(request: Request) -> None:
    """A dependency of every route: 422 naming each query parameter it does not take."""
    route = request.scope.get("route")
    # /healthz takes whatever a probe adds (a cache buster): it needs no token either.
    if not isinstance(route, APIRoute) or route.path == "/healthz":
        return
    known = frozenset(_query_names(route.dependant))
    unknown = sorted({name for name in request.query_params if name not in known})
    if unknown:
        raise RequestValidationError(
            [
                # Only the name's length: the name or its value may be a secret.
                {
                    "loc": ("query", f"#{i + 1}"),
                    "msg": f"unknown query parameter ({len(name)} characters); "
                    f"this route takes {', '.join(sorted(known)) or 'none'}",
                    "type": "extra_forbidden",
                }
                for i, name in enumerate(unknown)
            ]
        )
