"""How every service answers an error: plain text or JSON, the right status, safe headers.

The platform's clients parse plain-text errors, so that is the default;
JSON when the client prefers it. PostgreSQL or Redis being away is the
dependency's failure, answered 503 with ``Retry-After``, never 500.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis import exceptions as redis_exc
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response

from .negotiate import NotAcceptable, prefers_json

logger = logging.getLogger(__name__)


def error_response(
    request: Request,
    status: int,
    message: str,
    *,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """Plain text by default (the platform's clients parse it); JSON if preferred.

    Header values are made safe (see ``header_value``): they often carry what
    the client sent, such as a run id.
    """
    safe = {name: header_value(value) for name, value in (headers or {}).items()}
    if prefers_json(request.headers.get("accept")):
        body: dict[str, Any] = {"error": message, "details": details}
        if extra:
            body.update(extra)
        return JSONResponse(body, status_code=status, headers=safe)
    return PlainTextResponse(message + "\n", status_code=status, headers=safe)


def header_value(value: str) -> str:
    """``value`` as printable ASCII: anything else (non-ASCII, CR, LF, NUL) percent-encoded.

    A header cannot carry those bytes (a 500 from the server, or a header
    injected into the response); a client-supplied value may contain them.
    """
    if value.isascii() and value.isprintable():
        return value
    raw = value.encode("utf-8", "surrogatepass")  # a path may carry lone surrogates from bad UTF-8
    return urllib.parse.quote(raw, safe="".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%"))


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[0] if loc else "request"
        name = ".".join(loc[1:]) or where
        if err.get("type") == "missing":
            parts.append(f"missing {where} parameter {name!r}" if where != "body" else f"missing field {name!r}")
        else:
            parts.append(f"invalid {where} parameter {name!r}: {err.get('msg')}")
    # A parameter a route and one of its dependencies both take is reported once.
    return "; ".join(dict.fromkeys(parts)) or "invalid request"


def dependency_failure(exc: BaseException) -> str | None:
    """What is unavailable when ``exc`` says PostgreSQL or Redis cannot be reached now, else None.

    Such a failure is the service's dependency's, not the request's nor a
    bug: every service answers it 503 with the reason (see
    ``dependency_response``), as ``/ready`` does, never 500.
    """
    if isinstance(exc, sa_exc.DBAPIError) and (
        exc.connection_invalidated or isinstance(exc.orig, psycopg.OperationalError)
    ):
        return "database unavailable"
    if isinstance(exc, psycopg.OperationalError | sa_exc.TimeoutError):
        return "database unavailable"
    if isinstance(exc, redis_exc.ConnectionError | redis_exc.TimeoutError):
        return "redis unavailable"
    return None


def dependency_response(request: Request, what: str) -> Response:
    logger.warning("%s %s: %s", request.method, request.url.path, what)
    return error_response(request, 503, f"{what}; try again later", headers={"Retry-After": "5"})


def install_error_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return error_response(request, exc.status_code, str(exc.detail), headers=exc.headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        # The platform's clients expect 400 with a reason, not FastAPI's 422.
        assert isinstance(exc, RequestValidationError)
        return error_response(request, 400, _describe_validation(exc))

    async def not_acceptable(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotAcceptable)
        return PlainTextResponse("not acceptable; available types: " + ", ".join(exc.offered) + "\n", status_code=406)

    async def unexpected(request: Request, exc: Exception) -> Response:
        unavailable = dependency_failure(exc)
        if unavailable is not None:
            return dependency_response(request, unavailable)
        logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(request, 500, "internal server error")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(NotAcceptable, not_acceptable)
    app.add_exception_handler(Exception, unexpected)
