"""``/health``, ``/ready`` and ``/metrics``, the same on every service.

``/health`` says the process answers; ``/ready`` runs the service's
readiness checks (PostgreSQL, Redis when it uses it) with a time limit and
names what failed. Both answer exactly ``ok``, as the platform's services do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from fastapi import FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import PlainTextResponse, Response

from .middleware import HeadAsGet, HttpMetrics, ObservabilityMiddleware, make_http_metrics

ReadinessCheck = Callable[[], Awaitable[None]]


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
