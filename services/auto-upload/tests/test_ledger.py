"""The upload ledger against a real PostgreSQL: claims, leases, outcomes, replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from janitor_auto_upload import ledger
from janitor_common.db.engine import make_async_engine


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_async_engine(database_url, pool_size=10)
    yield engine
    await engine.dispose()


async def test_claim_upload_once(engine: AsyncEngine) -> None:
    assert await ledger.record_pending(engine, "run1", ["foo_1.0_source.changes", "foo_1.0_amd64.changes"]) == 2
    assert await ledger.record_pending(engine, "run1", ["foo_1.0_source.changes"]) == 0  # already known
    first = await ledger.claim(engine, "w1", 60)
    second = await ledger.claim(engine, "w1", 60)
    assert first is not None and second is not None and first != second
    assert first.attempts == 1
    assert await ledger.claim(engine, "w2", 60) is None  # both held
    assert await ledger.mark_uploaded(engine, first, "w1", "dput output")
    assert await ledger.mark_failed(engine, second, "w1", "debsign: no secret key")
    assert await ledger.claim(engine, "w2", 60) is None  # neither comes back by itself
    assert await ledger.record_pending(engine, "run1", ["foo_1.0_source.changes"]) == 0  # backfill adds nothing
    states = {e.changes_filename: (e.state, e.last_error, e.output) for e in await ledger.entries(engine)}
    assert states == {
        first.changes_filename: ("uploaded", None, "dput output"),  # a success carries no error
        second.changes_filename: ("failed", "debsign: no secret key", None),
    }
    assert await ledger.run_settled(engine, "run1")
    assert [e.state for e in await ledger.entries(engine, "failed")] == ["failed"]
    with pytest.raises(ValueError):
        await ledger.entries(engine, "bogus")


async def test_renewal_keeps_a_lease_and_tells_a_lost_one(engine: AsyncEngine) -> None:
    await ledger.record_pending(engine, "run1", ["a.changes"])
    held = await ledger.claim(engine, "w1", 0.5)
    assert held is not None and not await ledger.run_settled(engine, "run1")
    for _ in range(3):
        await asyncio.sleep(0.3)
        assert await ledger.renew(engine, held, "w1", 0.5)  # renewed in time: nobody else may claim it
        assert await ledger.claim(engine, "w2", 0.5) is None
    await asyncio.sleep(0.7)  # the holder stops renewing
    taken = await ledger.claim(engine, "w2", 60)
    assert taken is not None and taken.attempts == 2
    assert not await ledger.renew(engine, held, "w1", 0.5)  # the old holder learns it lost the row


async def test_force_marks_the_row_forced_until_the_attempt_clears_it(engine: AsyncEngine) -> None:
    await ledger.record_pending(engine, "run1", ["a.changes"])
    first = await ledger.claim(engine, "w1", 60)
    assert first is not None and not first.forced
    assert await ledger.mark_uploaded(engine, first, "w1", "ok")
    assert await ledger.force(engine, "run1") == 1
    again = await ledger.claim(engine, "w1", 60)
    assert again is not None and again.forced
    assert await ledger.clear_forced(engine, again, "w1")
    assert await ledger.mark_uploaded(engine, again, "w1", "ok again")
    await ledger.force(engine, "run1")
    await ledger.clear_forced(engine, again, "w1")  # not holding it: no effect
    third = await ledger.claim(engine, "w1", 60)
    assert third is not None and third.forced


async def test_expired_lease_is_claimed_again_and_the_old_holder_cannot_finish(engine: AsyncEngine) -> None:
    await ledger.record_pending(engine, "run2", ["bar_2_source.changes"])
    held = await ledger.claim(engine, "killed-process", 0.2)
    assert held is not None
    assert await ledger.claim(engine, "other", 60) is None  # lease still running
    await asyncio.sleep(0.4)
    again = await ledger.claim(engine, "other", 60)
    assert again is not None and again.attempts == 2
    # The first holder's late report must not overwrite the new holder's work.
    assert not await ledger.mark_uploaded(engine, held, "killed-process")
    assert await ledger.mark_uploaded(engine, again, "other")


async def test_transient_failure_retries_after_delay(engine: AsyncEngine) -> None:
    await ledger.record_pending(engine, "run3", ["baz_3_source.changes"])
    held = await ledger.claim(engine, "w", 60)
    assert held is not None
    assert await ledger.retry_later(engine, held, "w", "connection refused", 0.3)
    assert await ledger.claim(engine, "w", 60) is None
    await asyncio.sleep(0.5)
    again = await ledger.claim(engine, "w", 60)
    assert again is not None and again.attempts == 2


async def test_force_reuploads_an_uploaded_row(engine: AsyncEngine) -> None:
    await ledger.record_pending(engine, "run4", ["q_4_source.changes"])
    held = await ledger.claim(engine, "w", 60)
    assert held is not None and await ledger.mark_uploaded(engine, held, "w")
    assert await ledger.force(engine, "run4") == 1
    assert (await ledger.claim(engine, "w", 60)) is not None


async def test_replicas_never_claim_the_same_row(engine: AsyncEngine, database_url: str) -> None:
    names = [f"pkg{i}_1_source.changes" for i in range(50)]
    for i, name in enumerate(names):
        await ledger.record_pending(engine, f"run-{i}", [name])

    async def replica(worker: str) -> list[tuple[str, str]]:
        got = []
        while (held := await ledger.claim(engine, worker, 60)) is not None:
            got.append((held.run_id, held.changes_filename))
            assert await ledger.mark_uploaded(engine, held, worker)
        return got

    results = await asyncio.gather(*(replica(f"replica-{i}") for i in range(4)))
    claimed = [item for r in results for item in r]
    assert len(claimed) == 50 and len(set(claimed)) == 50
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*), max(attempts) FROM auto_upload WHERE state = 'uploaded'").fetchone()
    assert row == (50, 1)
