"""App factory for the differ service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from janitor_common.appfactory import create_service_app
from janitor_common.artifacts import get_artifact_manager
from janitor_common.pubsub import ResultSubscriber

from .cache import DiffCache
from .differ import Differ
from .errors import install_error_handlers
from .metrics import make_metrics
from .precache import Precacher
from .routes import diffs, precaching
from .settings import DifferSettings


def cache_location(settings: DifferSettings) -> str:
    if "://" in settings.cache_path:
        return settings.cache_path
    return str(Path(settings.cache_path).absolute())


def create_app(settings: DifferSettings, *, subscribe: bool = True) -> FastAPI:
    artifact_location = settings.required_artifact_location("janitor-differ")
    registry = CollectorRegistry()
    metrics = make_metrics(registry)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI, state: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        differ = Differ(
            settings=settings,
            engine=state["engine"],
            artifacts=get_artifact_manager(artifact_location),
            cache=DiffCache(
                cache_location(settings),
                metrics.cache_write_failures,
                platform_layout=settings.platform_cache_layout,
            ),
            metrics=metrics,
        )
        precacher = Precacher(
            differ, state["redis"], concurrency=settings.precache_concurrency, queue_size=settings.precache_queue_size
        )
        stop = asyncio.Event()
        subscriber = ResultSubscriber(settings.redis_url, precacher.handle_result)
        task = asyncio.create_task(subscriber.run(stop)) if subscribe else None
        async with precacher.running():
            try:
                yield {"differ": differ, "precacher": precacher, "subscriber": subscriber}
            finally:
                stop.set()
                if task is not None:
                    await asyncio.wait_for(task, 10)

    app = create_service_app("janitor differ", settings, registry=registry, extra_lifespan=lifespan)

    install_error_handlers(app)
    app.include_router(diffs)
    app.include_router(precaching)
    return app
