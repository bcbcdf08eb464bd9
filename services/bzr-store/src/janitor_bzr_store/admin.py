"""The admin interface (internal, writable without credentials): repository list, diff, revision-info, remotes."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from breezy import errors as bzr_errors
from breezy.branch import Branch
from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from janitor_common import proc
from janitor_common.deps import Engine
from janitor_common.names import valid_campaign, valid_codebase, valid_revision
from janitor_common.openapi import answers

from . import browse, diffcmd
from .context import BzrContext, Context
from .history import UnknownRevision, revision_info
from .http import LIST_TYPES, SMART_METHODS, Refused, repository_list, run_blocking, text_error
from .smart_http import smart_endpoint

logger = logging.getLogger(__name__)


async def check_revisions(old: str, new: str) -> None:
    for revision in (old, new):
        if not valid_revision(revision):
            raise Refused(400, f"invalid revision: {revision[:100]!r}")


async def check_remote(remote: str) -> None:
    if not valid_campaign(remote):
        raise Refused(400, f"invalid remote name: {remote[:100]!r}")


# Checks of what the client sent; listed before ``Repository`` in a route's
# parameters, they answer 400 before anything is looked up.
ValidRevisions = Annotated[None, Depends(check_revisions)]
ValidRemote = Annotated[None, Depends(check_remote)]


async def codebase_repository(ctx: Context, engine: Engine, codebase: str) -> str:
    """The path of ``codebase``'s repository; a 400 or 404 that says which is missing otherwise."""
    if not valid_codebase(codebase):
        raise Refused(400, f"invalid codebase name: {codebase[:100]!r}")
    if not await run_blocking(ctx, ctx.store.has_repository, codebase):
        if not await ctx.codebases.exists(engine, codebase):
            raise Refused(404, f"no such codebase: {codebase}")
        raise Refused(404, f"no repository for codebase: {codebase}")
    return str(ctx.store.repository_path(codebase))


Repository = Annotated[str, Depends(codebase_repository)]

admin_router = APIRouter()


@admin_router.get("/", responses=answers(LIST_TYPES, 406))
async def list_repositories(request: Request, ctx: Context) -> Response:
    return await repository_list(request, ctx, "/")


@admin_router.get("/{codebase}/diff", responses=answers(["text/x-diff"], 404, 500, 504))
async def diff(ctx: Context, codebase: str, old: str, new: str, _: ValidRevisions, repo_path: Repository) -> Response:
    return await stream_diff(ctx, repo_path, old, new)


@admin_router.get("/{codebase}/revision-info", responses=answers(["application/json"], 404))
async def revision_info_route(
    ctx: Context, codebase: str, old: str, new: str, _: ValidRevisions, repo_path: Repository
) -> Response:
    try:
        info = await run_blocking(ctx, revision_info, repo_path, old, new)
    except UnknownRevision as e:
        raise Refused(404, f"unknown revision: {e}") from None
    except bzr_errors.BzrError as e:
        logger.error("cannot read repository %s: %s", repo_path, e)
        raise Refused(503, f"repository not openable: {codebase}") from None
    return JSONResponse(info)


@admin_router.post("/{codebase}/remotes/{remote}", responses=answers([], 404, 415, ok_status=204))
async def set_remote(
    request: Request, ctx: Context, codebase: str, remote: str, _: ValidRemote, repo_path: Repository
) -> Response:
    form = await request.form()
    url = form.get("url")
    if not isinstance(url, str) or not url:
        raise Refused(400, "missing form field 'url'")

    def set_parent() -> bool:
        # Found as the pages find branches: by name, never through a symbolic
        # link, so a link planted in the store cannot point this elsewhere.
        path = browse.branch_path(Path(repo_path), remote)
        if path is None:
            return False
        try:
            branch = Branch.open(str(path))
        except bzr_errors.NotBranchError:
            return False
        branch.set_parent(url)
        return True

    if not await run_blocking(ctx, set_parent):
        raise Refused(404, f"no branch at {codebase}/{remote}")
    return PlainTextResponse("", status_code=204)


async def smart(request: Request) -> Response:
    return await smart_endpoint(request, request.path_params["path"], "admin")


# A plain Starlette route: smart requests are many and small, and need none
# of FastAPI's parameter handling.
admin_router.add_route("/{path:path}", smart, methods=SMART_METHODS, include_in_schema=False)


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
