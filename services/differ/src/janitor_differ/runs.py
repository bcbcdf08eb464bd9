"""Runs as the differ sees them: ``run`` joined with ``debian_build``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Text, bindparam, cast, select
from sqlalchemy.ext.asyncio import AsyncEngine

from janitor_common.db.models import DebianBuild, Run
from janitor_common.names import check_run_id


class RunUnavailable(Exception):
    """A run we cannot diff; answered with 404 and ``unavailable_run_id``."""

    def __init__(self, run_id: str, reason: str) -> None:
        super().__init__(reason)
        self.run_id = run_id
        self.reason = reason


@dataclass(frozen=True)
class RunInfo:
    id: str
    codebase: str
    campaign: str
    result_code: str
    source: str
    version: str
    distribution: str
    binary_packages: tuple[str, ...]
    revision: str | None
    main_branch_revision: str | None
    change_set: str

    def label(self) -> str:
        """How diffoscope's sources are named: ``<source> version <version> (<campaign>)``."""
        return f"{self.source} version {self.version} ({self.campaign})"


_QUERY = (
    select(
        Run.id,
        Run.codebase,
        Run.suite,
        Run.result_code,
        Run.revision,
        Run.main_branch_revision,
        Run.change_set,
        DebianBuild.source,
        cast(DebianBuild.version, Text).label("version"),
        DebianBuild.distribution,
        DebianBuild.binary_packages,
    )
    .outerjoin(DebianBuild, DebianBuild.run_id == Run.id)
    .where(Run.id == bindparam("id"))
)


async def get_run(engine: AsyncEngine, run_id: str) -> RunInfo:
    # A run id that no run can have (NUL, control characters, slashes, over
    # 255 characters) is not looked up: PostgreSQL refuses some of them.
    try:
        check_run_id(run_id)
    except ValueError:
        raise RunUnavailable(run_id, f"no such run: {run_id!r}") from None
    async with engine.connect() as conn:
        row = (await conn.execute(_QUERY, {"id": run_id})).mappings().first()
    if row is None:
        raise RunUnavailable(run_id, f"no such run: {run_id}")
    if row["result_code"] != "success":
        raise RunUnavailable(run_id, f"run {run_id} did not succeed ({row['result_code']})")
    if row["source"] is None:
        raise RunUnavailable(run_id, f"run {run_id} has no Debian build")
    return RunInfo(
        id=row["id"],
        codebase=row["codebase"],
        campaign=row["suite"],
        result_code=row["result_code"],
        source=row["source"],
        version=row["version"],
        distribution=row["distribution"],
        binary_packages=tuple(row["binary_packages"] or ()),
        revision=row["revision"],
        main_branch_revision=row["main_branch_revision"],
        change_set=row["change_set"],
    )
