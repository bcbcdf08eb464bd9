"""ASGI middleware every service runs: request metrics and access log, and HEAD for GET.

Each app gets its own Prometheus registry (no process-global state), so
tests can build several apps in one process and read their metrics apart.
Plain ASGI rather than BaseHTTPMiddleware, so streamed responses pass
through unbuffered.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("janitor.access")


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
