"""Finding what a route names: a codebase's repository, a branch; a 400 or 404 that says which is missing.

Every route that takes names goes through here, so each applies the same
rules: names validated before they touch the file system, and found along
the store's layout without following a symbolic link.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncEngine

from janitor_common.names import valid_campaign, valid_codebase

from . import browse
from .context import BzrContext, Context
from .http import Refused, run_blocking


def check_codebase(codebase: str) -> None:
    if not valid_codebase(codebase):
        raise Refused(400, f"invalid codebase name: {codebase[:100]!r}")


def check_branch_names(campaign: str, role: str) -> None:
    for kind, name in (("campaign", campaign), ("role", role)):
        if not valid_campaign(name):
            raise Refused(400, f"invalid {kind} name: {name[:100]!r}")


async def repository_at(ctx: BzrContext, codebase: str, engine: AsyncEngine | None = None) -> Path:
    """The codebase's repository; with ``engine``, a 404 also says whether the codebase is unknown."""
    check_codebase(codebase)
    if not await run_blocking(ctx, ctx.store.has_repository, codebase):
        if engine is not None and not await ctx.codebases.exists(engine, codebase):
            raise Refused(404, f"no such codebase: {codebase}")
        raise Refused(404, f"no repository for codebase: {codebase}")
    return ctx.store.repository_path(codebase)


async def branch_at(ctx: BzrContext, codebase: str, relpath: str) -> Path:
    """The branch at ``relpath`` (``campaign`` or ``campaign/role``) of the codebase's repository."""
    repo = await repository_at(ctx, codebase)
    path: Path | None = await run_blocking(ctx, browse.branch_path, repo, relpath)
    if path is None:
        raise Refused(404, f"no branch at {codebase}/{relpath}")
    return path


async def locate_branch(ctx: Context, codebase: str, campaign: str, role: str) -> Path:
    check_codebase(codebase)
    check_branch_names(campaign, role)
    return await branch_at(ctx, codebase, f"{campaign}/{role}")


# The branch a route's ``codebase``, ``campaign`` and ``role`` name.
BranchPath = Annotated[Path, Depends(locate_branch)]
