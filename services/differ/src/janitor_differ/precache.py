"""Background diffs: a bounded queue, a few workers, one computation per pair.

A ``result`` message for a successful run makes (unchanged run, changed run)
pairs; each pair's debdiff and diffoscope results are computed ahead of the
first request. Several replicas receive every message, so a Redis lock per
pair lets only one of them compute it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from sqlalchemy import Select, and_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased

from janitor_common.db.models import Run
from janitor_common.pubsub import ResultMessage

from .differ import Differ
from .runs import RunUnavailable

logger = logging.getLogger(__name__)

LOCK_PREFIX = "janitor-differ:precache:"

# A control (unchanged) run is one whose id is its change set's: the platform
# starts each change set with it. A changed run's baseline is the newest
# successful control run of the same codebase built from the revision the
# changed run started from.
_is_control = Run.id == Run.change_set


def _control_for_changed(codebase: str, revision: str) -> Select[str]:
    return (
        select(Run.id)
        .where(Run.codebase == codebase, Run.result_code == "success", Run.revision == revision, _is_control)
        .order_by(Run.finish_time.desc().nulls_last())
        .limit(1)
    )


def _changed_for_control(revision: str, control_id: str) -> Select[str]:
    return (
        select(Run.id)
        .where(
            Run.result_code == "success",
            Run.main_branch_revision == revision,
            Run.id != control_id,
            Run.revision.is_distinct_from(Run.main_branch_revision),
        )
        .order_by(Run.finish_time)
    )


def _all_pairs() -> Select[str, str]:
    changed, control = aliased(Run, name="changed"), aliased(Run, name="control")
    return (
        select(control.id, changed.id)
        .join(
            control,
            and_(
                control.codebase == changed.codebase,
                control.revision == changed.main_branch_revision,
                control.id == control.change_set,
                control.result_code == "success",
            ),
        )
        .where(
            changed.result_code == "success",
            changed.id != control.id,
            changed.revision.is_distinct_from(changed.main_branch_revision),
        )
        .ext(distinct_on(changed.id))
        .order_by(changed.id, control.finish_time.desc().nulls_last())
    )


async def pairs_for_result(engine: AsyncEngine, msg: ResultMessage) -> list[tuple[str, str]]:
    """The (old, new) pairs a finished run makes: only a successful Debian build has packages to diff."""
    if not msg.is_success or msg.target.name != "debian":
        return []
    async with engine.connect() as conn:
        if msg.revision is not None and msg.revision == msg.main_branch_revision:
            rows = await conn.execute(_changed_for_control(msg.revision, msg.log_id))
            return [(msg.log_id, r[0]) for r in rows]
        if msg.main_branch_revision is None or msg.codebase is None:
            return []
        row = (await conn.execute(_control_for_changed(msg.codebase, msg.main_branch_revision))).first()
        return [(row[0], msg.log_id)] if row is not None and row[0] != msg.log_id else []


async def all_pairs(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        return [(r[0], r[1]) for r in await conn.execute(_all_pairs())]


class Precacher:
    def __init__(self, differ: Differ, redis: aioredis.Redis, *, concurrency: int, queue_size: int) -> None:
        self.differ = differ
        self.redis = redis
        self.concurrency = concurrency
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(queue_size)
        self.done = 0
        self.stopping = False

    def submit(self, old_id: str, new_id: str) -> bool:
        try:
            self.queue.put_nowait((old_id, new_id))
        except asyncio.QueueFull:
            logger.warning("precache queue full; dropping %s..%s", old_id, new_id)
            self.differ.metrics.precached.labels("dropped").inc()
            return False
        self.differ.metrics.queue_depth.set(self.queue.qsize())
        return True

    async def handle_result(self, msg: ResultMessage) -> None:
        pairs = await pairs_for_result(self.differ.engine, msg)
        if pairs:
            logger.info("result %s: precaching %d pair(s)", msg.log_id, len(pairs))
        for old_id, new_id in pairs:
            self.submit(old_id, new_id)

    async def compute(self, old_id: str, new_id: str) -> str:
        # Length-prefixed: the ids are free text, and (a:b, c) must not share (a, b:c)'s lock.
        lock = f"{LOCK_PREFIX}{len(old_id)}:{old_id}:{new_id}"
        ttl = int(self.differ.settings.task_timeout * 4) + 60
        if not await self.redis.set(lock, "1", nx=True, ex=ttl):
            return "elsewhere"  # another replica has it
        try:
            old, new = await self.differ.runs(old_id, new_id)
            for tool in ("debdiff", "diffoscope"):
                try:
                    if tool == "debdiff":
                        await self.differ.debdiff_raw(old, new)
                    else:
                        await self.differ.diffoscope_raw(old, new)
                except Exception as e:
                    logger.warning("precache %s %s..%s failed: %s", tool, old_id, new_id, e)
            return "computed"
        except RunUnavailable as e:
            logger.info("precache %s..%s skipped: %s", old_id, new_id, e)
            return "unavailable"
        finally:
            await self.redis.delete(lock)

    async def worker(self) -> None:
        # The flag as well as cancellation: a cancellation that arrives while
        # redis-py is mid-command can be swallowed by it.
        while not self.stopping:
            old_id, new_id = await self.queue.get()
            self.differ.metrics.queue_depth.set(self.queue.qsize())
            try:
                outcome = await self.compute(old_id, new_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("precache %s..%s failed", old_id, new_id)
                outcome = "failed"
            self.differ.metrics.precached.labels(outcome).inc()
            self.done += 1
            self.queue.task_done()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(self.worker(), name=f"precache-{i}") for i in range(self.concurrency)]
        try:
            yield
        finally:
            self.stopping = True
            for t in tasks:
                t.cancel()
            _, pending = await asyncio.wait(tasks, timeout=10)
            if pending:
                logger.warning("%d precache worker(s) did not stop in time", len(pending))
