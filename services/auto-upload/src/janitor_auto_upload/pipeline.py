"""Where uploads come from (result messages, catch-up) and the workers that do them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import timedelta

from sqlalchemy import Interval, Select, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from janitor_common.artifacts import ArtifactManager, ArtifactsMissing
from janitor_common.db.models import AutoUpload, DebianBuild, Run
from janitor_common.pubsub import ResultMessage

from . import ledger
from .settings import AutoUploadSettings
from .uploader import Uploader, changes_files

logger = logging.getLogger(__name__)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less when ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def wanted(settings: AutoUploadSettings, msg: ResultMessage) -> str | None:
    """Why a result is not for us, or None when it is."""
    if not msg.is_success:
        return f"code {msg.code}"
    if msg.target.name != "debian":
        return f"target {msg.target.name or 'missing'}"
    if settings.distribution and msg.build_distribution not in settings.distribution:
        return f"distribution {msg.build_distribution}"
    return None


async def enqueue_run(
    settings: AutoUploadSettings, engine: AsyncEngine, artifacts: ArtifactManager, run_id: str
) -> int:
    """Ledger rows for the run's .changes files; 0 when it has none (or they are known)."""
    try:
        names = await artifacts.list_names(run_id)
    except ArtifactsMissing:
        logger.warning("run %s: no artifacts to upload", run_id)
        return 0
    found = changes_files(names, settings.source_only)
    if not found:
        logger.warning("run %s: no .changes among its artifacts", run_id)
    return await ledger.record_pending(engine, run_id, found)


def never_seen(days: float, distributions: list[str]) -> Select[str]:
    """Successful builds finished within ``days`` that have no ledger row, oldest first."""
    recent = or_(Run.finish_time.is_(None), Run.finish_time > func.now() - literal(timedelta(days=days), Interval()))
    statement = (
        select(Run.id)
        .join(DebianBuild, DebianBuild.run_id == Run.id)
        .where(Run.result_code == "success", recent, ~exists().where(AutoUpload.run_id == Run.id))
        .order_by(Run.finish_time.asc().nulls_first())
    )
    if distributions:
        statement = statement.where(DebianBuild.distribution.in_(distributions))
    return statement


async def catch_up(settings: AutoUploadSettings, engine: AsyncEngine, artifacts: ArtifactManager) -> int:
    """Queue successful builds within the horizon that the ledger has never seen."""
    async with engine.connect() as conn:
        rows = await conn.execute(never_seen(settings.catchup_horizon_days, list(settings.distribution)))
        run_ids = [r[0] for r in rows]
    added = 0
    for run_id in run_ids:
        added += await enqueue_run(settings, engine, artifacts, run_id)
    if added:
        logger.info("catch-up queued %d upload(s) from %d run(s)", added, len(run_ids))
    return added


async def work(uploader: Uploader, wake: asyncio.Event, stop: asyncio.Event) -> None:
    """Claim and upload until ``stop``; sleep until woken when there is nothing to do."""
    while not stop.is_set():
        try:
            claim = await ledger.claim(uploader.engine, uploader.worker, uploader.settings.lease_seconds)
        except Exception as e:
            # The database is away (restart, network): /ready says so; keep trying.
            logger.warning("cannot claim work: %s; retrying", str(e).splitlines()[0] if str(e) else type(e).__name__)
            await pause(stop, 2.0)
            continue
        if claim is None:
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), 1.0)
            except TimeoutError:
                pass
            continue
        try:
            await uploader.process(claim)
        except asyncio.CancelledError:
            # Shutdown abandoned this upload (its tools are killed): give the row
            # back so a restart or another replica takes it up without waiting
            # for the lease. If that fails the lease still frees it later.
            with contextlib.suppress(Exception):
                await asyncio.shield(ledger.release(uploader.engine, claim, uploader.worker))
            logger.warning("abandoned %s/%s; it is queued again", claim.run_id, claim.changes_filename)
            raise
        except Exception:
            # The row keeps its lease and is taken up again when it runs out;
            # one bad upload must not stop the worker.
            logger.exception("upload of %s/%s failed unexpectedly", claim.run_id, claim.changes_filename)
            await asyncio.sleep(1.0)
