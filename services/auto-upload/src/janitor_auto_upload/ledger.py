"""The upload ledger: claim work so replicas never upload the same file, and record outcomes.

A row moves pending -> uploading -> uploaded | failed. "uploading" is
committed *before* the upload starts and carries a short lease that the
holder renews while it works (``renew``): if the process holding it dies,
the lease runs out within ``lease_seconds`` and another process may claim
the row again. Whether that second claim must upload again or only confirm an
upload that had finished is the uploader's business (dput's ``.upload``
log in the run's persistent work directory tells); the ledger makes sure
only one process at a time holds a row, and that an uploaded row is never
claimed again unless an operator forces it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Interval, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from janitor_common.db.models import AutoUpload

STATES = ("pending", "uploading", "uploaded", "failed")


@dataclass(frozen=True)
class Claim:
    run_id: str
    changes_filename: str
    attempts: int  # including this one
    forced: bool = False  # an operator asked for it to go again, whatever dput's log says
    # time.monotonic() before the claim was sent: its lease runs from no earlier.
    claimed_at: float = 0.0


@dataclass(frozen=True)
class Entry:
    run_id: str
    changes_filename: str
    state: str
    attempts: int
    last_error: str | None
    updated_at: datetime
    uploaded_at: datetime | None
    output: str | None


def _lease(seconds: float) -> ColumnElement[datetime]:
    """``now() + seconds``, computed by the database so every replica's clock agrees."""
    return func.now() + literal(timedelta(seconds=seconds), Interval())


async def record_pending(engine: AsyncEngine, run_id: str, changes_filenames: list[str]) -> int:
    """Rows for a run's .changes files; existing rows (whatever their state) are left alone."""
    if not changes_filenames:
        return 0
    statement = (
        insert(AutoUpload)
        .values([{"run_id": run_id, "changes_filename": name} for name in changes_filenames])
        .on_conflict_do_nothing()
        .returning(AutoUpload.changes_filename)
    )
    async with engine.begin() as conn:
        return len((await conn.execute(statement)).all())


# Raw SQL where it is clearer than its Core spelling: one statement picks the
# next claimable row, skipping rows other replicas hold locked at this moment,
# and takes it, so two replicas never claim the same row.
_CLAIM = text(
    """
    UPDATE auto_upload AS u
    SET state = 'uploading', attempts = u.attempts + 1, claimed_by = :worker,
        lease_until = now() + make_interval(secs => :lease), updated_at = now()
    FROM (
        SELECT run_id, changes_filename FROM auto_upload
        WHERE next_attempt_at <= now()
          AND (state = 'pending' OR (state = 'uploading' AND lease_until < now()))
        ORDER BY next_attempt_at, created_at
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    ) AS next
    WHERE u.run_id = next.run_id AND u.changes_filename = next.changes_filename
    RETURNING u.run_id, u.changes_filename, u.attempts, u.forced
    """
)


async def claim(engine: AsyncEngine, worker: str, lease_seconds: float) -> Claim | None:
    """The next row to upload, now held by ``worker`` for ``lease_seconds``; None when there is none."""
    sent = time.monotonic()
    async with engine.begin() as conn:
        row = (await conn.execute(_CLAIM, {"worker": worker, "lease": lease_seconds})).first()
    return Claim(row[0], row[1], row[2], row[3], sent) if row is not None else None


async def _finish(engine: AsyncEngine, claim: Claim, worker: str, **values: Any) -> bool:
    """Set ``values`` only if ``worker`` still holds the row: a lost lease is never overwritten."""
    statement = (
        update(AutoUpload)
        .where(
            AutoUpload.run_id == claim.run_id,
            AutoUpload.changes_filename == claim.changes_filename,
            AutoUpload.claimed_by == worker,
            AutoUpload.state == "uploading",
        )
        .values(**values)
    )
    async with engine.begin() as conn:
        result = await conn.execute(statement)
        return bool(result.rowcount)


async def renew(engine: AsyncEngine, claim: Claim, worker: str, lease_seconds: float) -> bool:
    """Extend ``worker``'s lease; False when it is no longer ``worker``'s (another took it over)."""
    return await _finish(engine, claim, worker, lease_until=_lease(lease_seconds))


async def clear_forced(engine: AsyncEngine, claim: Claim, worker: str) -> bool:
    """The forced attempt has moved the old dput log aside: from now on a new log counts again."""
    return await _finish(engine, claim, worker, forced=False)


async def mark_uploaded(engine: AsyncEngine, claim: Claim, worker: str, output: str | None = None) -> bool:
    return await _finish(
        engine,
        claim,
        worker,
        state="uploaded",
        uploaded_at=func.now(),
        updated_at=func.now(),
        lease_until=None,
        last_error=None,
        output=output,
        forced=False,
    )


async def mark_failed(engine: AsyncEngine, claim: Claim, worker: str, error: str) -> bool:
    """A permanent failure: not retried until an operator forces it."""
    return await _finish(
        engine, claim, worker, state="failed", last_error=error, updated_at=func.now(), lease_until=None
    )


async def retry_later(engine: AsyncEngine, claim: Claim, worker: str, error: str, delay_seconds: float) -> bool:
    """A transient failure: back to pending, claimable again after ``delay_seconds``."""
    return await _finish(
        engine,
        claim,
        worker,
        state="pending",
        last_error=error,
        updated_at=func.now(),
        lease_until=None,
        next_attempt_at=_lease(delay_seconds),
    )


async def release(engine: AsyncEngine, claim: Claim, worker: str) -> bool:
    """An upload abandoned at shutdown: claimable again at once, this attempt not counted."""
    return await _finish(
        engine,
        claim,
        worker,
        state="pending",
        attempts=func.greatest(AutoUpload.attempts - 1, 0),
        updated_at=func.now(),
        lease_until=None,
    )


async def force(engine: AsyncEngine, run_id: str, changes_filename: str | None = None) -> int:
    """Operator's choice: upload again, whatever the ledger says (including uploaded rows)."""
    statement = (
        update(AutoUpload)
        .where(AutoUpload.run_id == run_id)
        .values(state="pending", next_attempt_at=func.now(), lease_until=None, updated_at=func.now(), forced=True)
    )
    if changes_filename is not None:
        statement = statement.where(AutoUpload.changes_filename == changes_filename)
    async with engine.begin() as conn:
        result = await conn.execute(statement)
        return int(result.rowcount or 0)


async def run_settled(engine: AsyncEngine, run_id: str) -> bool:
    """Whether every upload of the run is uploaded or finally failed (its work directory may go)."""
    statement = select(func.bool_and(AutoUpload.state.in_(("uploaded", "failed")))).where(AutoUpload.run_id == run_id)
    async with engine.connect() as conn:
        return bool((await conn.execute(statement)).scalar_one())


async def waiting(engine: AsyncEngine) -> int:
    """Rows not yet uploaded that will be tried (pending, or being uploaded now)."""
    statement = select(func.count()).select_from(AutoUpload).where(AutoUpload.state.in_(("pending", "uploading")))
    async with engine.connect() as conn:
        return int((await conn.execute(statement)).scalar_one())


async def entries(engine: AsyncEngine, state: str | None = None, limit: int = 1000) -> list[Entry]:
    if state is not None and state not in STATES:
        raise ValueError(f"unknown state {state!r}; one of {', '.join(STATES)}")
    statement = (
        select(
            AutoUpload.run_id,
            AutoUpload.changes_filename,
            AutoUpload.state,
            AutoUpload.attempts,
            AutoUpload.last_error,
            AutoUpload.updated_at,
            AutoUpload.uploaded_at,
            AutoUpload.output,
        )
        .order_by(AutoUpload.updated_at.desc())
        .limit(limit)
    )
    if state is not None:
        statement = statement.where(AutoUpload.state == state)
    async with engine.connect() as conn:
        return [Entry(*row) for row in await conn.execute(statement)]
