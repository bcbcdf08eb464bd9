"""One claimed ledger row, from artifacts to an upload (or a recorded failure)."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from janitor_common.artifacts import ArtifactManager, ArtifactsMissing

from . import ledger, tools
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
        """Upload the claimed file; returns the outcome recorded in the ledger."""
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
        except ArtifactsMissing:
            return await self._failed(claim, f"no artifacts for run {claim.run_id}")

        if tools.upload_log(changes, host).exists():
            # dput finished before a crash, the ledger never heard: done, not uploaded again.
            logger.info("%s/%s: already uploaded to %s (dput log found)", claim.run_id, changes.name, host)
            await ledger.mark_uploaded(self.engine, claim, self.worker, "dput log found after a restart")
            return "uploaded"

        timeout = self.settings.tool_timeout
        signed = await tools.run(
            tools.debsign_argv(changes, self.settings.debsign_keyid), cwd=workdir, env=self.env(), time_limit=timeout
        )
        if not signed.ok:
            self.metrics.debsign_failed.inc()
            # Never dput after a failed debsign.
            return await self._failed(claim, signed.describe())
        put = await tools.run(
            tools.dput_argv(changes, host, self.settings.dput_config), cwd=workdir, env=self.env(), time_limit=timeout
        )
        if not put.ok or not tools.upload_log(changes, host).exists():
            self.metrics.upload_failed.inc()
            if put.transient and claim.attempts < self.settings.max_attempts:
                delay = min(300.0, self.settings.retry_base_seconds * 2.0 ** (claim.attempts - 1))
                logger.warning("%s/%s: %s; retrying in %gs", claim.run_id, changes.name, put.describe(), delay)
                await ledger.retry_later(self.engine, claim, self.worker, put.describe(), delay)
                self.metrics.uploads.labels("retry").inc()
                return "retry"
            return await self._failed(claim, put.describe())
        await ledger.mark_uploaded(self.engine, claim, self.worker, put.output.strip()[-2000:])
        self.metrics.uploads.labels("uploaded").inc()
        self.metrics.duration.observe(time.monotonic() - started)
        logger.info("%s/%s: uploaded to %s", claim.run_id, changes.name, host)
        return "uploaded"

    async def _failed(self, claim: ledger.Claim, reason: str) -> str:
        logger.error("%s/%s: upload failed: %s", claim.run_id, claim.changes_filename, reason)
        await ledger.mark_failed(self.engine, claim, self.worker, reason)
        self.metrics.uploads.labels("failed").inc()
        return "failed"
