"""``janitor-auto-upload backfill``: upload the newest build of each (distribution, source).

Idempotent through the ledger: a build whose .changes files are already
recorded (uploaded, failed or in hand elsewhere) is skipped, so running it
twice uploads nothing the second time.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from sqlalchemy import Select, Text, cast, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncEngine

from janitor_common.artifacts import ArtifactManager
from janitor_common.db.models import DebianBuild, Run

from . import ledger
from .pipeline import enqueue_run
from .uploader import Uploader


def newest_builds(distributions: list[str]) -> Select[str, str, str, str]:
    """The newest successful build of each (distribution, source), optionally of some distributions only."""
    statement = (
        select(Run.id, DebianBuild.distribution, DebianBuild.source, cast(DebianBuild.version, Text))
        .join(DebianBuild, DebianBuild.run_id == Run.id)
        .where(Run.result_code == "success")
        .ext(distinct_on(DebianBuild.distribution, DebianBuild.source))
        .order_by(DebianBuild.distribution, DebianBuild.source, DebianBuild.version.desc(), Run.finish_time.desc())
    )
    if distributions:
        statement = statement.where(DebianBuild.distribution.in_(distributions))
    return statement


@dataclass
class Summary:
    uploaded: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"uploaded {self.uploaded}, skipped {self.skipped}, failed {self.failed}"


async def backfill(
    uploader: Uploader, engine: AsyncEngine, artifacts: ArtifactManager, out: TextIO = sys.stderr
) -> Summary:
    settings = uploader.settings
    async with engine.connect() as conn:
        builds = (await conn.execute(newest_builds(list(settings.distribution)))).all()
    summary = Summary()
    total = len(builds)
    for i, (run_id, distribution, source, version) in enumerate(builds, 1):
        if await enqueue_run(settings, engine, artifacts, run_id) == 0:
            summary.skipped += 1
        else:
            while (claim := await ledger.claim(engine, uploader.worker, settings.lease_seconds)) is not None:
                outcome = await uploader.process(claim)
                if outcome == "failed":
                    summary.failed += 1
                    summary.failures.append(f"{claim.run_id}/{claim.changes_filename}")
                elif outcome == "uploaded":
                    summary.uploaded += 1
        width = 30
        done = int(width * i / total)
        out.write(
            f"\r[{'#' * done}{'.' * (width - done)}] {i}/{total} {distribution}/{source} {version}: {summary.line()}"
        )
        out.flush()
    if total:
        out.write("\n")
    return summary
