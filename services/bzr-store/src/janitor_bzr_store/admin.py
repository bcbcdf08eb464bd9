"""The admin interface (internal, writable without credentials): repository list, diff, revision-info, remotes."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator

from breezy import errors as bzr_errors
from breezy.branch import Branch
from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from janitor_common import proc
from janitor_common.deps import get_engine
from janitor_common.names import valid_campaign, valid_codebase, valid_revision
from janitor_common.openapi import answers

from . import diffcmd
from .context import BzrContext, get_context
from .history import UnknownRevision, revision_info
from .http import LIST_TYPES, SMART_METHODS, repository_list, run_blocking, text_error
from .smart_http import smart_endpoint

logger = logging.getLogger(__name__)


def bad_revisions(*revisions: str) -> Response | None:
    for revision in revisions:
        if not valid_revision(revision):
            return text_error(400, f"invalid revision: {revision[:100]!r}")
    return None


def admin_router() -> APIRouter:
    router = APIRouter()

    @router.get("/", responses=answers(LIST_TYPES, 406))
    async def list_repositories(request: Request) -> Response:
        return await repository_list(request, "/")

    async def codebase_repo(request: Request, codebase: str) -> tuple[BzrContext, str] | Response:
        ctx = get_context(request)
        if not valid_codebase(codebase):
            return text_error(400, f"invalid codebase name: {codebase[:100]!r}")
        path = ctx.store.repository_path(codebase)
        if not await run_blocking(ctx, ctx.store.has_repository, codebase):
            if not await ctx.codebases.exists(get_engine(request), codebase):
                return text_error(404, f"no such codebase: {codebase}")
            return text_error(404, f"no repository for codebase: {codebase}")
        return ctx, str(path)

    @router.get("/{codebase}/diff", responses=answers(["text/x-diff"], 404, 500, 504))
    async def diff(request: Request, codebase: str, old: str, new: str) -> Response:
        if bad := bad_revisions(old, new):
            return bad
        found = await codebase_repo(request, codebase)
        if isinstance(found, Response):
            return found
        ctx, repo_path = found
        return await stream_diff(ctx, repo_path, old, new)

    @router.get("/{codebase}/revision-info", responses=answers(["application/json"], 404))
    async def revision_info_route(request: Request, codebase: str, old: str, new: str) -> Response:
        if bad := bad_revisions(old, new):
            return bad
        found = await codebase_repo(request, codebase)
        if isinstance(found, Response):
            return found
        ctx, repo_path = found
        try:
            info = await run_blocking(ctx, revision_info, repo_path, old, new)
        except UnknownRevision as e:
            return text_error(404, f"unknown revision: {e}")
        except bzr_errors.BzrError as e:
            logger.error("cannot read repository %s: %s", repo_path, e)
            return text_error(503, f"repository not openable: {codebase}")
        return JSONResponse(info)

    @router.post("/{codebase}/remotes/{remote}", responses=answers([], 404, 415, ok_status=204))
    async def set_remote(request: Request, codebase: str, remote: str) -> Response:
        if not valid_campaign(remote):
            return text_error(400, f"invalid remote name: {remote[:100]!r}")
        found = await codebase_repo(request, codebase)
        if isinstance(found, Response):
            return found
        ctx, repo_path = found
        form = await request.form()
        url = form.get("url")
        if not isinstance(url, str) or not url:
            return text_error(400, "missing form field 'url'")

        def set_parent() -> bool:
            try:
                branch = Branch.open(os.path.join(repo_path, remote))
            except bzr_errors.NotBranchError:
                return False
            branch.set_parent(url)
            return True

        if not await run_blocking(ctx, set_parent):
            return text_error(404, f"no branch at {codebase}/{remote}")
        return PlainTextResponse("", status_code=204)

    async def smart(request: Request) -> Response:
        return await smart_endpoint(request, request.path_params["path"], "admin")

    # A plain Starlette route: smart requests are many and small, and need none
    # of FastAPI's parameter handling.
    router.add_route("/{path:path}", smart, methods=SMART_METHODS, include_in_schema=False)

    return router


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
