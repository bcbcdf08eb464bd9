"""Repository management on the admin interface: every branch, creating one, a branch's info and remotes.

The routes put the campaign first (``/{campaign}/{codebase}/{role}/...``),
as the bzr-store plan does; they address the same branch
``<codebase>/<campaign>/<role>`` as the codebase-first routes and pages.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import AsyncIterator, Iterator
from itertools import islice
from typing import Any

from breezy import errors as bzr_errors
from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from janitor_common.deps import Engine
from janitor_common.negotiate import negotiate
from janitor_common.openapi import answers
from janitor_common.pages import document

from . import branches
from .context import BzrContext, Context
from .http import LIST_TYPES, Refused, run_blocking
from .locate import BranchPath, check_branch_names, check_codebase

logger = logging.getLogger(__name__)
# Branches read from disk per trip to the worker pool while listing.
LIST_BATCH = 500
BRANCH = "/{campaign}/{codebase}/{role}"

manage_router = APIRouter()


async def batches(ctx: BzrContext) -> AsyncIterator[list[branches.Listed]]:
    found: Iterator[branches.Listed] = branches.iter_branches(ctx.store)
    while True:
        batch = await run_blocking(ctx, lambda: list(islice(found, LIST_BATCH)))
        if not batch:
            return
        yield batch


@manage_router.get("/repositories", responses=answers(LIST_TYPES, 406))
async def all_branches(request: Request, ctx: Context) -> Response:
    """Every branch in the store; streamed, so a store of any size is listed in bounded memory."""
    media_type = negotiate(request.headers.get("accept"), LIST_TYPES)

    async def as_json() -> AsyncIterator[bytes]:
        first = True
        yield b"["
        async for batch in batches(ctx):
            for b in batch:
                yield (b"" if first else b",") + json.dumps(b.as_json()).encode()
                first = False
        yield b"]\n"

    async def as_text() -> AsyncIterator[bytes]:
        async for batch in batches(ctx):
            yield "".join(b.path + "\n" for b in batch).encode()

    async def as_html() -> AsyncIterator[bytes]:
        head, _, tail = document("Branches", "\x00", service="Bazaar store (admin)").partition("\x00")
        yield (
            head + "<h1>Branches</h1><table><tr><th>branch</th><th>revno</th><th>revision</th>"
            "<th>last modified (UTC)</th></tr>"
        ).encode()
        async for batch in batches(ctx):
            yield "".join(
                f'<tr><td><a href="/{html.escape(b.path)}/">{html.escape(b.path)}</a></td>'
                f"<td>{'' if b.revno is None else b.revno}</td><td><code>{html.escape(b.revision or '')}</code></td>"
                f"<td>{b.last_modified.strftime('%Y-%m-%d %H:%M:%S') if b.last_modified else ''}</td></tr>"
                for b in batch
            ).encode()
        yield ("</table>" + tail).encode()

    body = {"application/json": as_json, "text/plain": as_text, "text/html": as_html}[media_type]()
    return StreamingResponse(body, media_type=media_type)


@manage_router.post(BRANCH.replace("/", "/repositories/", 1), responses=answers(["application/json"], 400, 404))
async def create(ctx: Context, engine: Engine, campaign: str, codebase: str, role: str) -> Response:
    """Make sure the codebase's repository and the (empty) branch exist: 201 when created, 200 when there."""
    check_codebase(codebase)
    check_branch_names(campaign, role)
    if campaign not in ctx.campaigns:
        raise Refused(404, f"no such campaign: {campaign}")
    if not await ctx.codebases.exists(engine, codebase):
        raise Refused(404, f"no such codebase: {codebase}")
    try:
        created = await run_blocking(ctx, branches.create_branch, ctx.store, codebase, campaign, role)
    except (branches.Outside, bzr_errors.PathNotChild) as e:
        logger.warning("not creating %s/%s/%s: a symbolic link is in the way (%s)", codebase, campaign, role, e)
        raise Refused(404, f"cannot create {codebase}/{campaign}/{role}: not a directory of the store") from None
    except bzr_errors.AlreadyControlDirError:
        raise Refused(409, f"{codebase}/{campaign}/{role} holds something that is not a branch") from None
    if created:
        logger.info("created branch %s/%s/%s", codebase, campaign, role)
    answer = {"codebase": codebase, "campaign": campaign, "role": role, "created": created}
    return JSONResponse(answer, status_code=201 if created else 200)


@manage_router.get(BRANCH + "/info", responses=answers(["application/json"], 400, 404))
async def info(ctx: Context, campaign: str, codebase: str, role: str, branch: BranchPath) -> Response:
    """The branch's format, tip, last change, parent and remotes, and its repository's size on disk."""
    found: dict[str, Any] = await run_blocking(ctx, branches.info, ctx.store, codebase, branch)
    return JSONResponse({"campaign": campaign, "role": role, **found})


@manage_router.get(BRANCH + "/remotes", responses=answers(["application/json"], 400, 404))
async def get_remotes(ctx: Context, campaign: str, codebase: str, role: str, branch: BranchPath) -> Response:
    """The branch's remotes, name → URL, as kept in its ``branch.conf``."""
    return JSONResponse(await run_blocking(ctx, branches.remotes_at, branch))


@manage_router.post(BRANCH + "/remotes", responses=answers(["application/json"], 400, 404, 415))
async def add_remote(
    request: Request, ctx: Context, campaign: str, codebase: str, role: str, branch: BranchPath
) -> Response:
    """Set a remote (form or JSON fields ``name`` and ``url``); answers the branch's remotes."""
    fields = await read_fields(request)
    name, url = fields.get("name"), fields.get("url")
    if not isinstance(name, str) or not name:
        raise Refused(400, "missing field 'name'")
    if not isinstance(url, str) or not url:
        raise Refused(400, "missing field 'url'")
    problem = branches.check_remote_name(name) or branches.check_url(url)
    if problem is not None:
        raise Refused(400, problem)
    await run_blocking(ctx, branches.set_remote, ctx.store, codebase, branch, name, url)
    logger.info("remote %s of %s/%s/%s set to %s", name, codebase, campaign, role, url)
    return JSONResponse(await run_blocking(ctx, branches.remotes_at, branch))


async def read_fields(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            value = json.loads(await request.body())
        except ValueError:
            raise Refused(400, "the body is not JSON") from None
        if not isinstance(value, dict):
            raise Refused(400, "the body is not a JSON object")
        return value
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return dict(await request.form())
    raise Refused(415, "send the fields as a form or as a JSON object")
