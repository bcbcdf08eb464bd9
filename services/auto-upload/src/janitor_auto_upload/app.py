"""App factory: the upload workers, the result listener and catch-up, and the HTTP side."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from janitor_common.appfactory import create_service_app
from janitor_common.artifacts import get_artifact_manager
from janitor_common.pubsub import ResultMessage, ResultSubscriber

from . import ledger
from .metrics import make_metrics
from .pipeline import catch_up, enqueue_run, pause, wanted, work, worker_name
from .routes import uploads_router
from .settings import AutoUploadSettings
from .uploader import Uploader

logger = logging.getLogger(__name__)

# SIGTERM: the upload in hand gets this long to finish before it is abandoned
# (its row keeps its lease and is taken up again after a restart).
STOP_GRACE = 12.0
# How often the uploads_pending gauge is refreshed from the ledger.
PENDING_GAUGE_INTERVAL = 1.0


def required_upload_settings(settings: AutoUploadSettings) -> str:
    """What uploading cannot do without (ValueError naming it); returns the artifact location."""
    location = settings.required_artifact_location("janitor-auto-upload")
    if settings.dput_host is None:
        raise ValueError("janitor-auto-upload needs --dput-host")
    prepare_state_dir(settings.state_dir)
    return location


def prepare_state_dir(path: Path) -> None:
    """The state directory exists and is writable, or a ValueError that says how to choose another."""
    if not path.is_absolute():
        raise ValueError(f"state directory {path} must be an absolute path (--state-dir or JANITOR_STATE_DIR)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as e:
        raise ValueError(
            f"cannot use state directory {path}: {e.strerror or e}; choose one with --state-dir or JANITOR_STATE_DIR"
        ) from None


def create_app(settings: AutoUploadSettings, *, run_workers: bool = True) -> FastAPI:
    artifact_location = required_upload_settings(settings)
    registry = CollectorRegistry()
    metrics = make_metrics(registry)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI, state: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        engine = state["engine"]
        artifacts = get_artifact_manager(artifact_location)
        stop, wake = asyncio.Event(), asyncio.Event()

        async def on_result(msg: ResultMessage) -> None:
            reason = wanted(settings, msg)
            if reason is not None:
                logger.debug("result %s not for upload: %s", msg.log_id, reason)
                return
            if await enqueue_run(settings, engine, artifacts, msg.log_id):
                wake.set()

        async def catch_up_loop() -> None:
            while not stop.is_set():
                try:
                    if await catch_up(settings, engine, artifacts):
                        wake.set()
                except Exception:
                    logger.exception("catch-up failed; trying again later")
                await pause(stop, settings.catchup_interval)

        async def gauge_loop() -> None:
            while not stop.is_set():
                try:
                    metrics.pending.set(await ledger.waiting(engine))
                except Exception as e:  # the database is away; /ready says so
                    logger.debug("could not count pending uploads: %s", e)
                await pause(stop, PENDING_GAUGE_INTERVAL)

        uploaders = [
            Uploader(settings, engine, artifacts, metrics, worker_name()) for _ in range(settings.upload_concurrency)
        ]
        subscriber = ResultSubscriber(settings.redis_url, on_result)
        tasks = []
        if run_workers:
            tasks = [asyncio.create_task(subscriber.run(stop), name="subscriber")]
            tasks.append(asyncio.create_task(catch_up_loop(), name="catch-up"))
            tasks.append(asyncio.create_task(gauge_loop(), name="pending-gauge"))
            tasks += [asyncio.create_task(work(u, wake, stop), name=f"upload-{i}") for i, u in enumerate(uploaders)]
        try:
            yield {"subscriber": subscriber, "wake": wake}
        finally:
            stop.set()
            wake.set()
            _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE) if tasks else (set(), set())
            for task in pending:
                logger.warning("abandoning %s at shutdown; its upload is taken up again later", task.get_name())
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=3)

    app = create_service_app("janitor auto-upload", settings, registry=registry, extra_lifespan=lifespan)

    app.include_router(uploads_router)
    return app
