"""The admin interface (internal, writable without credentials): repository list, diff, revision-info, remotes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import PlainTextResponse, Response

from janitor_common.deps import Engine
from janitor_common.names import valid_campaign
from janitor_common.openapi import answers

from . import branches, browse
from .context import Context
from .http import LIST_TYPES, SMART_METHODS, Refused, repository_list, run_blocking
from .locate import repository_at
from .reads import ValidRevisions, revision_info_response, stream_diff
from .smart_http import smart_endpoint

logger = logging.getLogger(__name__)


async def check_remote(remote: str) -> None:
    if not valid_campaign(remote):
        raise Refused(400, f"invalid remote name: {remote[:100]!r}")


# Listed before ``Repository`` in a route's parameters: 400 before anything is looked up.
ValidRemote = Annotated[None, Depends(check_remote)]


async def codebase_repository(ctx: Context, engine: Engine, codebase: str) -> str:
    return str(await repository_at(ctx, codebase, engine))


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
    return await revision_info_response(ctx, repo_path, codebase, old, new)


@admin_router.post("/{codebase}/remotes/{remote}", responses=answers([], 404, 415, ok_status=204))
async def set_remote(
    request: Request, ctx: Context, codebase: str, remote: str, _: ValidRemote, repo_path: Repository
) -> Response:
    form = await request.form()
    url = form.get("url")
    if not isinstance(url, str) or not url:
        raise Refused(400, "missing form field 'url'")

    # Found as the pages find branches: by name, never through a symbolic
    # link, so a link planted in the store cannot point this elsewhere.
    path = await run_blocking(ctx, browse.branch_path, Path(repo_path), remote)
    if path is None:
        raise Refused(404, f"no branch at {codebase}/{remote}")
    await run_blocking(ctx, branches.set_remote, ctx.store, codebase, path, "parent", url)
    return PlainTextResponse("", status_code=204)


async def smart(request: Request) -> Response:
    return await smart_endpoint(request, request.path_params["path"], "admin")


# A plain Starlette route: smart requests are many and small, and need none
# of FastAPI's parameter handling.
admin_router.add_route("/{path:path}", smart, methods=SMART_METHODS, include_in_schema=False)
