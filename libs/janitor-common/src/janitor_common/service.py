"""The parts every service's app factory and command line share.

A service's ``create_app(settings)`` calls ``create_service_app`` and adds its
routes; resources (database engine, Redis client, metrics registry) are opened
in the lifespan and reach handlers through ``request.state``, never through
module globals, so tests can build several apps with their own settings.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from . import __version__
from .config import CommonSettings, ConfigError, load_settings
from .db.engine import make_async_engine
from .logs import setup_logging
from .web import (
    HttpMetrics,
    document_common_answers,
    install_common_routes,
    install_error_handlers,
    postgres_check,
    redis_check,
)

logger = logging.getLogger(__name__)

S = TypeVar("S", bound=CommonSettings)

# Extra per-app resources: gets the app and the common state, yields more state.
ExtraLifespan = Callable[[FastAPI, dict[str, Any]], contextlib.AbstractAsyncContextManager[dict[str, Any]]]


def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.state.engine
    return engine


def get_redis(request: Request) -> aioredis.Redis:
    client: aioredis.Redis = request.state.redis
    return client


def create_service_app(
    title: str,
    settings: CommonSettings,
    *,
    registry: CollectorRegistry | None = None,
    http_metrics: HttpMetrics | None = None,
    extra_lifespan: ExtraLifespan | None = None,
    docs: bool = True,
    metrics_route: bool = True,
    uses_redis: bool = True,
) -> FastAPI:
    """A FastAPI app with the common resources, error handling and routes.

    Apps served by one process may share ``registry`` and ``http_metrics``;
    ``metrics_route=False`` keeps ``/metrics`` off an app facing the public.
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
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.settings = settings
    app.state.registry = registry
    install_error_handlers(app)
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


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def add_common_arguments(parser: argparse.ArgumentParser, *, default_port: int | None = None) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="janitor.conf in protobuf text format (default: $JANITOR_CONFIG)"
    )
    parser.add_argument(
        "--listen-address", metavar="ADDR", help="address to listen on (default: 127.0.0.1; 0.0.0.0 in containers)"
    )
    if default_port is not None:
        parser.add_argument("--port", type=int, metavar="PORT", help=f"port to listen on (default: {default_port})")
    add_logging_arguments(parser)


def add_logging_arguments(parser: argparse.ArgumentParser, *, default_level: str = "INFO") -> None:
    """``--log-level``, and the platform's own flags so its manifests start these programs unchanged."""
    levels = ", ".join(f"{level} (default)" if level == default_level else level for level in LEVELS)
    parser.add_argument("--log-level", metavar="LEVEL", help=levels)
    parser.add_argument("--debug", action="store_true", help="debug logging (the same as --log-level DEBUG)")
    parser.add_argument(
        "--gcp-logging",
        action="store_true",
        help="log one JSON object per line with 'severity', as Google Cloud's logging agent reads",
    )


def settings_from_args(cls: type[S], prog: str, args: argparse.Namespace) -> S:
    """Load settings or exit with one line naming the bad setting.

    Command-line options named like settings fields override them; options
    not given (None) leave the lower sources in charge.
    """
    values = {k: v for k, v in vars(args).items() if k in cls.model_fields}
    if getattr(args, "debug", False) or getattr(args, "verbose", False):
        values["log_level"] = "DEBUG"
    try:
        settings = load_settings(cls, **values)
    except ConfigError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging(settings.log_level, cloud_json=bool(getattr(args, "gcp_logging", False)))
    logger.info("%s %s starting", prog, __version__)
    return settings
