"""The part of every service's app factory that is the same: resources, errors, common routes.

A service's ``create_app(settings)`` calls ``create_service_app`` and adds its
routers; resources (database engine, Redis client, metrics registry) are
opened in the lifespan and reach handlers through the dependencies in
``deps``, never through module globals, so tests can build several apps with
their own settings.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from . import __version__
from .config import CommonSettings
from .db.engine import make_async_engine
from .deps import get_engine, get_redis
from .errors import install_error_handlers
from .health import install_common_routes, postgres_check, redis_check
from .middleware import HttpMetrics
from .openapi import document_common_answers
from .pages import install_page_routes

# Extra per-app resources: gets the app and the common state, yields more state.
ExtraLifespan = Callable[[FastAPI, dict[str, Any]], contextlib.AbstractAsyncContextManager[dict[str, Any]]]


def create_service_app(
    title: str,
    settings: CommonSettings,
    *,
    registry: CollectorRegistry | None = None,
    http_metrics: HttpMetrics | None = None,
    extra_lifespan: ExtraLifespan | None = None,
    docs: bool = True,
    metrics_route: bool = True,
    index_page: bool = True,
    uses_redis: bool = True,
) -> FastAPI:
    """A FastAPI app with the common resources, error handling and routes.

    Apps served by one process may share ``registry`` and ``http_metrics``;
    ``metrics_route=False`` keeps ``/metrics`` off an app facing the public;
    ``index_page=False`` leaves ``/`` to the service's own routes.
    """
    registry = registry if registry is not None else CollectorRegistry()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        engine = make_async_engine(settings.database_url)
        client = aioredis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
        state: dict[str, Any] = {"engine": engine, "redis": client, "settings": settings, "registry": registry}
        try:
            if extra_lifespan is None:
                yield state
            else:
                async with extra_lifespan(app, state) as more:
                    yield {**state, **more}
        finally:
            await client.aclose()
            await engine.dispose()

    app = FastAPI(
        title=title,
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served by install_page_routes, with local assets
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.settings = settings
    app.state.registry = registry
    install_error_handlers(app)
    install_page_routes(app, docs=docs, index=index_page)
    document_common_answers(app)
    install_common_routes(
        app,
        registry,
        # Readiness checks only what the service needs (bzr-store does not use Redis).
        lambda request: [
            ("postgresql", postgres_check(get_engine(request))),
            *([("redis", redis_check(get_redis(request)))] if uses_redis else []),
        ],
        http_metrics=http_metrics,
        metrics_route=metrics_route,
    )
    return app
