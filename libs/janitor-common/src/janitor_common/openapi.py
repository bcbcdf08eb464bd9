"""What the OpenAPI documents say: each route's real answers, 400 rather than 422, 503 everywhere.

Clients and the fuzz tests read these documents, so they must list the
statuses and types a route really answers with.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

# How an error answers (error_response): plain text, or JSON when preferred.
ERROR_CONTENT: dict[str, Any] = {
    "text/plain": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "object"}},
}


def answers(ok: Sequence[str], *errors: int, ok_status: int = 200) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=`` for its OpenAPI document: the types it answers with, and its errors.

    Every operation also documents 400 (FastAPI's 422 is answered 400 here)
    and 503 (PostgreSQL or Redis away): see ``document_common_answers``.
    """
    documented: dict[int | str, dict[str, Any]] = {
        ok_status: {"description": HTTPStatus(ok_status).phrase, "content": {t: {} for t in ok}}
    }
    for code in errors:
        documented[code] = {"description": HTTPStatus(code).phrase, "content": ERROR_CONTENT}
    return documented


def document_common_answers(app: FastAPI) -> None:
    """The OpenAPI document says what every route really answers: 400, not 422; 503 when a dependency is away."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                for code in (400, 503):
                    responses.setdefault(str(code), {"description": HTTPStatus(code).phrase, "content": ERROR_CONTENT})
        schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
        schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
