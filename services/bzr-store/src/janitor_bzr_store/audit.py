"""Who wrote what: one log line and one ``bzr_write_audit`` row per accepted write, a log line per refusal.

A push is several write requests (lock, insert the revisions, set the tip,
unlock); each is recorded with its verb, and each request on a branch with
the branch's tip before and after, so the request that moved the tip shows
where from and where to. The row is written after the response, in the
background: a database that is away costs the row (the log line says so),
never the push. Passwords never reach here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass

from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from janitor_common.db.models import BzrWriteAudit

from .metrics import StoreMetrics
from .store import Store, StorePath, read_last_revision

logger = logging.getLogger("janitor.bzr.audit")


@dataclass(frozen=True)
class WriteRequest:
    interface: str
    worker: str | None  # None on the admin interface, which has no accounts
    client: str | None
    codebase: str
    campaign: str | None
    role: str | None
    verb: str
    verb_class: str


def fields(values: dict[str, object]) -> str:
    """``key=value`` pairs with JSON values (strings quoted, None as null), for logs that machines read."""
    return " ".join(
        f"{k}={json.dumps(v) if isinstance(v, str) else 'null' if v is None else v}" for k, v in values.items()
    )


def read_tip(store: Store, sp: StorePath) -> str | None:
    """The tip revision of the branch at ``sp``, or None (no branch, or an empty one); blocking."""
    if sp.campaign is None:
        return None
    tip = read_last_revision(os.path.join(store.repository_path(sp.codebase), sp.relpath))
    return tip.revision if tip is not None else None


class Auditor:
    def __init__(self, engine: AsyncEngine, metrics: StoreMetrics, executor: concurrent.futures.Executor) -> None:
        self.engine = engine
        self.metrics = metrics
        self.executor = executor
        self._tasks: set[asyncio.Task[None]] = set()

    def accepted(
        self, request: WriteRequest, outcome: str, before: str | None, read_after: Callable[[], str | None]
    ) -> None:
        """Record a write request that ran to its end; ``read_after`` reads the tip now (blocking)."""
        self.metrics.writes.labels(request.worker or "", "accepted").inc()
        task = asyncio.get_running_loop().create_task(self._record(request, outcome, before, read_after))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(
        self, request: WriteRequest, outcome: str, before: str | None, read_after: Callable[[], str | None]
    ) -> None:
        after = await asyncio.get_running_loop().run_in_executor(self.executor, read_after)
        record = {**asdict(request), "outcome": outcome, "tip_before": before, "tip_after": after}
        logger.info("write accepted %s", fields(record))
        await self._insert(record)

    def refused(self, request: WriteRequest, reason: str) -> None:
        logger.warning("write refused %s", fields({**asdict(request), "reason": reason}))
        self.metrics.writes.labels(request.worker or "", "refused").inc()

    async def _insert(self, record: dict[str, object]) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(BzrWriteAudit).values(**record))
        except (OSError, DBAPIError, SQLAlchemyError) as e:
            logger.error("audit row not written (%s) for %s", type(e).__name__, fields(record))

    async def drain(self) -> None:
        """Wait for the rows still being written (at shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
