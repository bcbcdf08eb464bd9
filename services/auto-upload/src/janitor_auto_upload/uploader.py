"""One claimed ledger row, from artifacts to an upload (or a recorded failure)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from janitor_common.artifacts import ArtifactManager, ArtifactsMissing

from . import ledger, tools
from .lease import Lease, LeaseLost
from .metrics import UploadMetrics
from .settings import AutoUploadSettings

logger = logging.getLogger(__name__)


def make_readable(directory: Path) -> None:
    """Artifacts must be readable by the upload target; respect the umask for everything else."""
    umask = os.umask(0)
    os.umask(umask)
    for path in directory.iterdir():
        if path.is_file():
            mode = path.stat().st_mode
            path.chmod(stat.S_IMODE(mode) | ((0o444) & ~umask))


def changes_files(names: list[str], source_only: bool) -> list[str]:
    suffix = "_source.changes" if source_only else ".changes"
    return sorted(n for n in names if n.endswith(suffix))


@dataclass
class Uploader:
    settings: AutoUploadSettings
    engine: AsyncEngine
    artifacts: ArtifactManager
    metrics: UploadMetrics
    worker: str

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    async def process(self, claim: ledger.Claim) -> str:
        """Upload the claimed file, keeping its lease; returns the outcome recorded in the ledger.

        "lost" when the lease went to another worker meanwhile: nothing is recorded then.
        """
        lease = Lease(self.engine, claim, self.worker, self.settings.lease_seconds, claim.claimed_at)
        try:
            outcome = await lease.keep(self._process(claim, lease))
        except LeaseLost as e:
            logger.warning("%s/%s: not uploaded here: %s", claim.run_id, claim.changes_filename, e)
            self.metrics.uploads.labels("lease-lost").inc()
            return "lost"
        if outcome in ("uploaded", "failed"):
            await self._tidy(claim.run_id)
        return outcome

    async def _process(self, claim: ledger.Claim, lease: Lease) -> str:
        started = time.monotonic()
        workdir = self.settings.state_dir / claim.run_id
        changes = workdir / claim.changes_filename
        host = self.settings.dput_host
        assert host is not None
        try:
            if not changes.exists():
                await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
                await self.artifacts.retrieve(claim.run_id, workdir)
                await asyncio.to_thread(make_readable, workdir)
            if not changes.exists():
                return await self._failed(claim, f"{claim.changes_filename} is not among the run's artifacts")
            log = tools.upload_log(changes, host)
            if claim.forced:
                await asyncio.to_thread(self._move_aside, log)
                if not await ledger.clear_forced(self.engine, claim, self.worker):
                    raise LeaseLost("another worker holds it")
            elif log.exists():
                # dput finished before a crash, the ledger never heard: done, not uploaded again.
                logger.info("%s/%s: already uploaded to %s (dput log found)", claim.run_id, changes.name, host)
                found = await asyncio.to_thread(log.read_text, errors="replace")
                await ledger.mark_uploaded(
                    self.engine, claim, self.worker, f"dput log found after a restart:\n{found[-2000:]}"
                )
                return "uploaded"
        except ArtifactsMissing:
            return await self._failed(claim, f"no artifacts for run {claim.run_id}")
        except OSError as e:
            # A full or read-only state directory, unreadable artifacts: local
            # trouble that an operator (or time) clears. Not a reason to give up.
            return await self._retry(claim, f"local I/O error preparing the upload: {e}")

        timeout = self.settings.tool_timeout
        signed = await tools.run(
            tools.debsign_argv(changes, self.settings.debsign_keyid), cwd=workdir, env=self.env(), time_limit=timeout
        )
        if not signed.ok:
            self.metrics.debsign_failed.inc()
            # Never dput after a failed debsign.
            return await self._failed(claim, signed.describe())
        # A holder that was frozen or cut off past its lease must not start an upload now.
        await lease.confirm()
        put = await tools.run(
            tools.dput_argv(changes, host, self.settings.dput_config), cwd=workdir, env=self.env(), time_limit=timeout
        )
        if not put.ok or not tools.upload_log(changes, host).exists():
            self.metrics.upload_failed.inc()
            if put.transient:
                return await self._retry(claim, put.describe())
            return await self._failed(claim, put.describe())
        output = "\n".join(part for part in (signed.output.strip(), put.output.strip()) if part)
        if not await ledger.mark_uploaded(self.engine, claim, self.worker, output[-4000:]):
            logger.warning("%s/%s: uploaded, but the row is another worker's now", claim.run_id, changes.name)
        self.metrics.uploads.labels("uploaded").inc()
        self.metrics.duration.observe(time.monotonic() - started)
        logger.info("%s/%s: uploaded to %s", claim.run_id, changes.name, host)
        return "uploaded"

    @staticmethod
    def _move_aside(log: Path) -> None:
        if log.exists():
            aside = log.with_name(f"{log.name}.before-force-{time.strftime('%Y%m%dT%H%M%S')}")
            log.rename(aside)
            logger.info("forced upload: moved the earlier dput log aside to %s", aside.name)

    async def _tidy(self, run_id: str) -> None:
        """Remove a run's work directory once none of its uploads needs it (or its dput logs) again."""
        try:
            if await ledger.run_settled(self.engine, run_id):
                await asyncio.to_thread(shutil.rmtree, self.settings.state_dir / run_id, True)
        except Exception as e:  # a later upload of the run tidies up instead
            logger.warning("run %s: work directory not removed: %s", run_id, e)

    async def _retry(self, claim: ledger.Claim, reason: str) -> str:
        if claim.attempts >= self.settings.max_attempts:
            return await self._failed(claim, f"{reason} (after {claim.attempts} attempts)")
        delay = min(300.0, self.settings.retry_base_seconds * 2.0 ** (claim.attempts - 1))
        logger.warning("%s/%s: %s; retrying in %gs", claim.run_id, claim.changes_filename, reason, delay)
        await ledger.retry_later(self.engine, claim, self.worker, reason, delay)
        self.metrics.uploads.labels("retry").inc()
        return "retry"

    async def _failed(self, claim: ledger.Claim, reason: str) -> str:
        logger.error("%s/%s: upload failed: %s", claim.run_id, claim.changes_filename, reason)
        await ledger.mark_failed(self.engine, claim, self.worker, reason)
        self.metrics.uploads.labels("failed").inc()
        return "failed"
