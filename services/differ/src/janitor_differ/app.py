"""App factory for the differ service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry
from starlette.responses import JSONResponse, Response

from janitor_common.appfactory import create_service_app
from janitor_common.artifacts import get_artifact_manager
from janitor_common.errors import error_response
from janitor_common.negotiate import NotAcceptable, negotiate
from janitor_common.openapi import answers
from janitor_common.pubsub import ResultSubscriber

from .cache import DiffCache
from .debdiff import DebdiffError
from .debs import CorruptPackage
from .diffoscope import DiffoscopeError, valid_css_url
from .engine import DEBDIFF_TYPES, DIFFOSCOPE_TYPES, Differ
from .limits import ToolOutOfMemory, ToolTimeout
from .metrics import make_metrics
from .precache import Precacher, all_pairs
from .runs import RunUnavailable
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
            cache=DiffCache(cache_location(settings), metrics.cache_write_failures),
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

    def failure(request: Request, e: Exception, tool: str) -> Response:
        if isinstance(e, RunUnavailable):
            return error_response(
                request, 404, e.reason, headers={"unavailable_run_id": e.run_id}, extra={"run_id": e.run_id}
            )
        if isinstance(e, ToolTimeout):
            return error_response(request, 504, f"{tool} timed out", details=str(e))
        if isinstance(e, ToolOutOfMemory):
            return error_response(request, 503, f"{tool} used too much memory", details=str(e))
        if isinstance(e, CorruptPackage):
            return error_response(request, 500, str(e), extra={"run_id": e.run_id})
        if isinstance(e, NotAcceptable):
            raise e
        if isinstance(e, DebdiffError | DiffoscopeError):
            return error_response(request, 500, f"{tool} failed: {e}", details=str(e))
        raise e

    async def serve_diff(request: Request, tool: str, old_id: str, new_id: str) -> Response:
        differ: Differ = request.state.differ
        filtered = "filter_boring" in request.query_params
        try:
            # A run that cannot be diffed is a 404 whatever the client accepts.
            old, new = await differ.runs(old_id, new_id)
            await differ.ensure_available(tool, old, new)
            if tool == "debdiff":
                media_type = negotiate(request.headers.get("accept"), DEBDIFF_TYPES)
                # text/x-diff is the plain text rendering under its own name.
                plain = "text/plain" if media_type == "text/x-diff" else media_type
                body = await differ.debdiff(old, new, plain, filtered)
            else:
                media_type = negotiate(request.headers.get("accept"), DIFFOSCOPE_TYPES)
                css_url = request.query_params.get("css_url") or None
                if css_url is not None and not valid_css_url(css_url):
                    return error_response(request, 400, "invalid css_url: an http(s) URL or a path is expected")
                body = await differ.diffoscope(old, new, media_type, filtered, css_url)
        except Exception as e:
            return failure(request, e, tool)
        return Response(body, media_type=media_type)

    @app.get("/debdiff/{old_id}/{new_id}", responses=answers(DEBDIFF_TYPES, 404, 406, 500, 504))
    async def get_debdiff(request: Request, old_id: str, new_id: str) -> Response:
        return await serve_diff(request, "debdiff", old_id, new_id)

    @app.get("/diffoscope/{old_id}/{new_id}", responses=answers(DIFFOSCOPE_TYPES, 404, 406, 500, 504))
    async def get_diffoscope(request: Request, old_id: str, new_id: str) -> Response:
        return await serve_diff(request, "diffoscope", old_id, new_id)

    @app.post(
        "/precache/{old_id}/{new_id}", status_code=202, responses=answers(["application/json"], 404, ok_status=202)
    )
    async def precache(request: Request, old_id: str, new_id: str) -> Response:
        precacher: Precacher = request.state.precacher
        try:
            # As the platform's differ: a run that cannot be diffed is a 404 now, not a job that fails later.
            # (One check: both tools need the same packages; listing them twice would repeat the same I/O.)
            old, new = await request.state.differ.runs(old_id, new_id)
            await request.state.differ.ensure_available("diffoscope", old, new)
        except RunUnavailable as e:
            return failure(request, e, "precache")
        if not precacher.submit(old_id, new_id):
            return error_response(request, 503, "precache queue is full")
        return JSONResponse({"old_id": old_id, "new_id": new_id}, status_code=202)

    @app.post("/precache-all", status_code=202, responses=answers(["application/json"], ok_status=202))
    async def precache_all(request: Request) -> Response:
        precacher: Precacher = request.state.precacher
        pairs = await all_pairs(request.state.differ.engine)
        count = sum(precacher.submit(o, n) for o, n in pairs)
        return JSONResponse({"count": count}, status_code=202)  # queued, as the platform answers

    return app
