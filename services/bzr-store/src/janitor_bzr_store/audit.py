"""Who wrote what: one log line and one ``bzr_write_audit`` row per accepted write, a log line per refusal.

A push is several write requests (lock, insert the revisions, set the tip,
unlock); each is recorded with its verb, and each request on a branch with
the branch's tip before and after, so the request that moved the tip shows
where from and where to. The row is written after the response, in the
background: a database that is away costs the row (the log line says so),
never the push. The tips are read by the request's own worker, with the
codebase's write lock held (``SmartCall.observe``), so they are the
request's own doing, not a concurrent push's. Passwords never reach here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
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


# How long a row waits for others before the batch is written: a push's
# five or so write requests then cost one or two inserts, not five.
BATCH_DELAY = 0.2


class Auditor:
    """Writes the audit's rows in the background, in batches.

    A push is several write requests in quick succession; a row each, each
    in its own transaction, cost the event loop as much as the requests'
    own handling (and slowed the request after each write). Rows wait up to
    ``BATCH_DELAY`` for others, then go in one insert.
    """

    def __init__(self, engine: AsyncEngine, metrics: StoreMetrics, delay: float = BATCH_DELAY) -> None:
        self.engine = engine
        self.metrics = metrics
        self.delay = delay
        self._pending: list[dict[str, object]] = []
        self._writer: asyncio.Task[None] | None = None
        self._now = asyncio.Event()  # set at shutdown: no more waiting for others

    def accepted(self, request: WriteRequest, outcome: str, before: str | None, after: str | None) -> None:
        """Record a write request that ran to its end, with the tip before and after it."""
        self.metrics.writes.labels(request.worker or "", "accepted").inc()
        record = {**asdict(request), "outcome": outcome, "tip_before": before, "tip_after": after}
        logger.info("write accepted %s", fields(record))
        self._pending.append(record)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._now.wait(), self.delay)
            while self._pending:
                batch, self._pending = self._pending, []
                await self._insert(batch)
        finally:
            self._writer = None

    def refused(self, request: WriteRequest, reason: str) -> None:
        logger.warning("write refused %s", fields({**asdict(request), "reason": reason}))
        self.metrics.writes.labels(request.worker or "", "refused").inc()

    async def _insert(self, batch: list[dict[str, object]]) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(BzrWriteAudit), batch)
        except (OSError, DBAPIError, SQLAlchemyError) as e:
            for record in batch:
                logger.error("audit row not written (%s) for %s", type(e).__name__, fields(record))

    async def drain(self) -> None:
        """Write the rows still waiting, now (at shutdown)."""
        self._now.set()
        if self._writer is not None:
            await asyncio.wait({self._writer}, timeout=5)
