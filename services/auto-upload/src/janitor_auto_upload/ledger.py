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
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

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


async def record_pending(engine: AsyncEngine, run_id: str, changes_filenames: list[str]) -> int:
    """Rows for a run's .changes files; existing rows (whatever their state) are left alone."""
    if not changes_filenames:
        return 0
    async with engine.begin() as conn:
        result = await conn.execute(
            text(
                "INSERT INTO auto_upload (run_id, changes_filename) "
                "SELECT :run_id, unnest(CAST(:names AS text[])) ON CONFLICT DO NOTHING"
            ),
            {"run_id": run_id, "names": changes_filenames},
        )
        return int(result.rowcount or 0)


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


async def _finish(engine: AsyncEngine, claim: Claim, worker: str, sql: str, **params: object) -> bool:
    """Apply ``sql`` only if ``worker`` still holds the row: a lost lease is never overwritten."""
    async with engine.begin() as conn:
        result = await conn.execute(
            text(
                sql + " WHERE run_id = :run_id AND changes_filename = :name AND claimed_by = :worker"
                " AND state = 'uploading'"
            ),
            {"run_id": claim.run_id, "name": claim.changes_filename, "worker": worker, **params},
        )
        return bool(result.rowcount)


async def renew(engine: AsyncEngine, claim: Claim, worker: str, lease_seconds: float) -> bool:
    """Extend ``worker``'s lease; False when it is no longer ``worker``'s (another took it over)."""
    return await _finish(
        engine,
        claim,
        worker,
        "UPDATE auto_upload SET lease_until = now() + make_interval(secs => :lease)",
        lease=lease_seconds,
    )


async def clear_forced(engine: AsyncEngine, claim: Claim, worker: str) -> bool:
    """The forced attempt has moved the old dput log aside: from now on a new log counts again."""
    return await _finish(engine, claim, worker, "UPDATE auto_upload SET forced = false")


async def mark_uploaded(engine: AsyncEngine, claim: Claim, worker: str, output: str | None = None) -> bool:
    return await _finish(
        engine,
        claim,
        worker,
        "UPDATE auto_upload SET state = 'uploaded', uploaded_at = now(), updated_at = now(), "
        "lease_until = NULL, last_error = NULL, output = :output, forced = false",
        output=output,
    )


async def mark_failed(engine: AsyncEngine, claim: Claim, worker: str, error: str) -> bool:
    """A permanent failure: not retried until an operator forces it."""
    return await _finish(
        engine,
        claim,
        worker,
        "UPDATE auto_upload SET state = 'failed', last_error = :error, updated_at = now(), lease_until = NULL",
        error=error,
    )


async def retry_later(engine: AsyncEngine, claim: Claim, worker: str, error: str, delay_seconds: float) -> bool:
    """A transient failure: back to pending, claimable again after ``delay_seconds``."""
    return await _finish(
        engine,
        claim,
        worker,
        "UPDATE auto_upload SET state = 'pending', last_error = :error, updated_at = now(), lease_until = NULL, "
        "next_attempt_at = now() + make_interval(secs => :delay)",
        error=error,
        delay=delay_seconds,
    )


async def release(engine: AsyncEngine, claim: Claim, worker: str) -> bool:
    """An upload abandoned at shutdown: claimable again at once, this attempt not counted."""
    return await _finish(
        engine,
        claim,
        worker,
        "UPDATE auto_upload SET state = 'pending', attempts = GREATEST(attempts - 1, 0), updated_at = now(), "
        "lease_until = NULL",
    )


async def force(engine: AsyncEngine, run_id: str, changes_filename: str | None = None) -> int:
    """Operator's choice: upload again, whatever the ledger says (including uploaded rows)."""
    async with engine.begin() as conn:
        result = await conn.execute(
            text(
                "UPDATE auto_upload SET state = 'pending', next_attempt_at = now(), lease_until = NULL, "
                "updated_at = now(), forced = true "
                "WHERE run_id = :run_id AND (CAST(:name AS text) IS NULL OR changes_filename = :name)"
            ),
            {"run_id": run_id, "name": changes_filename},
        )
        return int(result.rowcount or 0)


async def run_settled(engine: AsyncEngine, run_id: str) -> bool:
    """Whether every upload of the run is uploaded or finally failed (its work directory may go)."""
    async with engine.connect() as conn:
        result = await conn.execute(
            text("SELECT bool_and(state IN ('uploaded', 'failed')) FROM auto_upload WHERE run_id = :run_id"),
            {"run_id": run_id},
        )
        return bool(result.scalar_one())


async def waiting(engine: AsyncEngine) -> int:
    """Rows not yet uploaded that will be tried (pending, or being uploaded now)."""
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT count(*) FROM auto_upload WHERE state IN ('pending', 'uploading')"))
        return int(result.scalar_one())


async def entries(engine: AsyncEngine, state: str | None = None, limit: int = 1000) -> list[Entry]:
    if state is not None and state not in STATES:
        raise ValueError(f"unknown state {state!r}; one of {', '.join(STATES)}")
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT run_id, changes_filename, state, attempts, last_error, updated_at, uploaded_at, output "
                "FROM auto_upload WHERE CAST(:state AS text) IS NULL OR state = :state "
                "ORDER BY updated_at DESC LIMIT :limit"
            ),
            {"state": state, "limit": limit},
        )
        return [Entry(*row) for row in rows]
