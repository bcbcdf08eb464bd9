"""What every service's HTTP side shares: health, readiness, metrics, errors, access log.

Each app gets its own Prometheus registry (no process-global state), so
tests can build several apps in one process and read their metrics apart.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from redis import exceptions as redis_exc
from redis.asyncio import Redis
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .negotiate import NotAcceptable, prefers_json

access_log = logging.getLogger("janitor.access")
logger = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[None]]


@dataclass
class HttpMetrics:
    requests: Counter
    latency: Histogram


def make_http_metrics(registry: CollectorRegistry) -> HttpMetrics:
    return HttpMetrics(
        requests=Counter(
            "http_requests", "HTTP requests by route and status", ["method", "route", "status"], registry=registry
        ),
        latency=Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route (until the response is complete)",
            ["method", "route"],
            registry=registry,
        ),
    )


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class ObservabilityMiddleware:
    """Per-route count and latency, and one access-log line per request.

    A plain ASGI middleware rather than BaseHTTPMiddleware, so streamed
    responses pass through unbuffered.
    """

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        sent = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = _route_template(scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            client = scope.get("client")
            query = scope.get("query_string", b"").decode("latin-1")
            target = scope["path"] + (f"?{query}" if query else "")
            access_log.info(
                "%s %s %s %d %dB %.1fms",
                client[0] if client else "-",
                method,
                target,
                status,
                sent,
                elapsed * 1000,
            )


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
    return "; ".join(parts) or "invalid request"


class HeadAsGet:
    """``HEAD`` answered wherever ``GET`` is: the GET's status and headers, no body.

    FastAPI routes answer only the methods they name (Starlette's own add
    HEAD to GET; FastAPI's do not), and HTTP says a server that answers GET
    answers HEAD. A route that does not answer GET still refuses HEAD.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


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


def postgres_check(engine: AsyncEngine) -> ReadinessCheck:
    async def check() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return check


def redis_check(client: Redis) -> ReadinessCheck:
    async def check() -> None:
        await client.ping()

    return check


def install_common_routes(
    app: FastAPI,
    registry: CollectorRegistry,
    checks: Callable[[Request], Sequence[tuple[str, ReadinessCheck]]],
    *,
    timeout: float = 2.0,
    http_metrics: HttpMetrics | None = None,
    metrics_route: bool = True,
) -> None:
    """``/health``, ``/ready`` and ``/metrics``, plus request metrics and access log.

    ``checks`` returns the readiness checks for a request; they are usually
    built from resources opened in the app's lifespan.
    """
    app.add_middleware(HeadAsGet)  # inside the metrics: they count HEAD as HEAD
    app.add_middleware(ObservabilityMiddleware, metrics=http_metrics or make_http_metrics(registry))

    # Exactly "ok", as the platform's own services answer (its tests compare the body).
    @app.get("/health", include_in_schema=False)
    async def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/ready", include_in_schema=False)
    async def ready(request: Request) -> PlainTextResponse:
        failures = []
        named = list(checks(request))

        async def run(name: str, check: ReadinessCheck) -> None:
            try:
                await asyncio.wait_for(check(), timeout)
            except TimeoutError:
                failures.append(f"{name}: no answer within {timeout:g}s")
            except Exception as e:  # any failure means "not ready", with its reason
                error = getattr(e, "orig", None) or e  # SQLAlchemy wraps the driver's error
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                failures.append(f"{name}: {reason}")

        await asyncio.gather(*(run(n, c) for n, c in named))
        if failures:
            return PlainTextResponse("not ready: " + "; ".join(sorted(failures)) + "\n", status_code=503)
        return PlainTextResponse("ok")

    if metrics_route:

        @app.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
