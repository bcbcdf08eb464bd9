"""Diffs and revision lists: of a codebase's repository (admin), or of one branch (both interfaces).

A diff runs in a subprocess (``diffcmd``) so a slow one is killed at its
deadline and never holds the service. The per-branch routes answer only
about what the branch holds, and accept revision numbers: a public client
can read what it could fetch with ``brz branch``, and no more.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import Annotated

from breezy import errors as bzr_errors
from fastapi import APIRouter, Depends
from starlette.responses import JSONResponse, Response, StreamingResponse

from janitor_common import proc
from janitor_common.names import valid_revision
from janitor_common.openapi import answers

from . import branches, diffcmd
from .context import BzrContext, Context
from .history import UnknownRevision, revision_info
from .http import Refused, run_blocking, text_error
from .locate import BranchPath

logger = logging.getLogger(__name__)


async def check_revisions(old: str, new: str) -> None:
    for revision in (old, new):
        if not valid_revision(revision):
            raise Refused(400, f"invalid revision: {revision[:100]!r}")


async def stream_diff(ctx: BzrContext, repo_path: str, old: str, new: str) -> Response:
    """Run the diff in a subprocess; 404/503 before any output, 504 at the deadline."""
    started = time.monotonic()
    deadline = started + ctx.settings.diff_timeout
    process = await proc.start([sys.executable, "-m", diffcmd.__name__, repo_path, old, new])
    assert process.stdout is not None and process.stderr is not None

    async def read(n: int = 65536) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return await asyncio.wait_for(process.stdout.read(n), remaining)  # type: ignore[union-attr]

    try:
        first = await read()
    except TimeoutError:
        await proc.finish(process)
        return text_error(504, f"diff took longer than {ctx.settings.diff_timeout:g}s")
    except BaseException:
        await asyncio.shield(proc.finish(process))
        raise
    if not first:
        stderr = (await process.stderr.read()).decode(errors="replace").strip()
        code = await process.wait()
        await proc.finish(process)
        ctx.metrics.diff_duration.observe(time.monotonic() - started)
        if code == diffcmd.UNKNOWN_REVISION:
            return text_error(404, stderr)
        if code == diffcmd.UNOPENABLE:
            return text_error(503, stderr)
        if code != 0:
            logger.error("diff failed (exit %s): %s", code, stderr)
            return text_error(500, "diff failed")
        return Response(b"", media_type="text/x-diff")

    async def produce() -> AsyncIterator[bytes]:
        chunk = first
        try:
            while chunk:
                yield chunk
                try:
                    chunk = await read()
                except TimeoutError:
                    logger.warning(
                        "diff of %s %s..%s cut at the %gs deadline", repo_path, old, new, ctx.settings.diff_timeout
                    )
                    return
            await process.wait()
        finally:
            await asyncio.shield(proc.finish(process))
            ctx.metrics.diff_duration.observe(time.monotonic() - started)

    return StreamingResponse(produce(), media_type="text/x-diff")


# Listed before the lookup in a route's parameters: 400 before anything is looked up.
ValidRevisions = Annotated[None, Depends(check_revisions)]


async def revision_info_response(ctx: BzrContext, repo_path: str, codebase: str, old: str, new: str) -> Response:
    try:
        info = await run_blocking(ctx, revision_info, repo_path, old, new)
    except UnknownRevision as e:
        raise Refused(404, f"unknown revision: {e}") from None
    except bzr_errors.BzrError as e:
        logger.error("cannot read repository %s: %s", repo_path, e)
        raise Refused(503, f"repository not openable: {codebase}") from None
    return JSONResponse(info)


async def resolve_in_branch(ctx: BzrContext, branch: BranchPath, old: str, new: str) -> tuple[str, str]:
    try:
        old_id, new_id = await run_blocking(ctx, branches.resolve, branch, [old, new])
    except branches.NotInBranch as e:
        raise Refused(404, f"not in this branch: {e}") from None
    except bzr_errors.BzrError as e:
        logger.error("cannot read branch %s: %s", branch, e)
        raise Refused(503, "branch not openable") from None
    return old_id, new_id


def branch_reads_router(path: str) -> APIRouter:
    """``diff`` and ``revision-info`` below ``path``, a template naming ``codebase``, ``campaign`` and ``role``."""
    router = APIRouter()

    @router.get(path + "/diff", responses=answers(["text/x-diff"], 404, 500, 504))
    async def branch_diff(
        ctx: Context, codebase: str, campaign: str, role: str, old: str, new: str, _: ValidRevisions, branch: BranchPath
    ) -> Response:
        """The unified diff between two revisions of the branch (ids or revision numbers)."""
        old_id, new_id = await resolve_in_branch(ctx, branch, old, new)
        return await stream_diff(ctx, str(ctx.store.repository_path(codebase)), old_id, new_id)

    @router.get(path + "/revision-info", responses=answers(["application/json"], 404))
    async def branch_revision_info(
        ctx: Context, codebase: str, campaign: str, role: str, old: str, new: str, _: ValidRevisions, branch: BranchPath
    ) -> Response:
        """The revisions from ``new`` back to ``old`` along the branch's left-hand history."""
        old_id, new_id = await resolve_in_branch(ctx, branch, old, new)
        return await revision_info_response(ctx, str(ctx.store.repository_path(codebase)), codebase, old_id, new_id)

    return router
