"""A claim's lease, kept alive while its upload runs, and lost loudly.

Leases are short (``lease_seconds``, 30 s by default) so that the claims of
a process that died are taken up again within a minute; a process that is
alive renews its lease every third of that while debsign and dput run.
When a renewal finds the row in other hands (the holder was frozen, or cut
off from the database, past its lease and another replica took over), or
when the lease has run out locally without a renewal getting through, the
upload is stopped (its tools killed) and nothing is reported: the row is
the other holder's now. Just before dput starts, the lease is confirmed
once more, so a holder that wakes up late never starts an upload.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from . import ledger

T = TypeVar("T")
logger = logging.getLogger(__name__)


class LeaseLost(Exception):
    """The claim is no longer (or cannot be shown to be) this worker's."""


class Lease:
    def __init__(
        self, engine: AsyncEngine, claim: ledger.Claim, worker: str, seconds: float, claimed_at: float
    ) -> None:
        self.engine = engine
        self.claim = claim
        self.worker = worker
        self.seconds = seconds
        # Counted from before the claim was sent: the database's lease ends no sooner.
        self.valid_until = claimed_at + seconds

    @property
    def interval(self) -> float:
        return self.seconds / 3

    def held(self) -> bool:
        return time.monotonic() < self.valid_until

    async def renew(self) -> bool | None:
        """True when renewed, False when lost to another holder, None when the database did not answer."""
        sent = time.monotonic()
        try:
            ok = await asyncio.wait_for(ledger.renew(self.engine, self.claim, self.worker, self.seconds), self.interval)
        except Exception as e:
            logger.warning(
                "%s/%s: cannot renew the lease: %s",
                self.claim.run_id,
                self.claim.changes_filename,
                str(e).splitlines()[0] if str(e) else type(e).__name__,
            )
            return None
        if ok:
            self.valid_until = sent + self.seconds
        return ok

    async def confirm(self) -> None:
        """Raise LeaseLost unless the lease is renewed now (before an upload starts)."""
        if await self.renew() is not True or not self.held():
            raise LeaseLost(f"{self.claim.run_id}/{self.claim.changes_filename}: lease not confirmed")

    async def keep(self, work: Awaitable[T]) -> T:
        """Run ``work``, renewing the lease; cancel it and raise LeaseLost when the lease is gone."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                await asyncio.wait({task}, timeout=self.interval)
                if task.done():
                    return task.result()
                renewed = await self.renew()
                if task.done():
                    return task.result()
                if renewed is False or not self.held():
                    why = "another worker holds it" if renewed is False else "it ran out without a renewal"
                    logger.warning(
                        "%s/%s: lease lost (%s); stopping this upload and reporting nothing",
                        self.claim.run_id,
                        self.claim.changes_filename,
                        why,
                    )
                    task.cancel()
                    await asyncio.wait({task})
                    raise LeaseLost(why)
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.wait({task})
            raise
