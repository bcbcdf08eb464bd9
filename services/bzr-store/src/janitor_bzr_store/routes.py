"""HTTP routes of both interfaces; the smart endpoint is shared between them."""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Mapping
from typing import Literal

from breezy import errors as bzr_errors
from breezy.branch import Branch
from breezy.transport import Transport
from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse

from janitor_common import proc
from janitor_common.auth import CHALLENGE, parse_basic
from janitor_common.names import valid_campaign, valid_codebase, valid_revision
from janitor_common.negotiate import negotiate
from janitor_common.service import get_engine
from janitor_common.web import answers

from . import diffcmd
from .context import BzrContext, get_context
from .history import UnknownRevision, revision_info
from .jail import jailed_transport
from .smart import (
    REQUEST_HEAD_LIMIT,
    BodyStalled,
    Last,
    NoSpace,
    NotUsable,
    Refused,
    SmartCall,
    Unknown,
    protocol_error,
    response_outcome,
    sniff_verb,
    verb_class,
)
from .store import SMART_SUFFIX, BadPath, StorePath, parse_store_path

logger = logging.getLogger(__name__)

Interface = Literal["admin", "public"]
LIST_TYPES = ["application/json", "text/html", "text/plain"]
# Enough for a protocol-3 header and arguments each at their limit.
SNIFF_LIMIT = 2 * REQUEST_HEAD_LIMIT + 64
# Responses complete within this size and time are sent whole, with a
# Content-Length; others are streamed (see smart_endpoint).
WRITE_LOCK = ".janitor-write.lock"  # in the codebase's directory, beside .bzr
RESPONSE_BUFFER = 1 << 20
RESPONSE_HOLD = 0.02
# ... and whose parts follow each other this closely: the slices of one flush
# do, the chunks of a stream (get_stream) do not, and waiting for a stream's
# end would only delay the records the client could be inserting.
RESPONSE_GAP = 0.003
# Anything but POST on a smart path gets 405 with "Allow: POST", as Breezy's own server does.
SMART_METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]


def text_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> PlainTextResponse:
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


async def run_blocking(ctx: BzrContext, fn, *args):  # type: ignore[no-untyped-def]
    return await asyncio.get_running_loop().run_in_executor(ctx.executor, fn, *args)


async def check_names(request: Request, ctx: BzrContext, sp: StorePath) -> Response | None:
    if not await ctx.codebases.exists(get_engine(request), sp.codebase):
        return text_error(404, f"no such codebase: {sp.codebase}")
    if sp.campaign is not None and sp.campaign not in ctx.campaigns:
        return text_error(404, f"no such campaign: {sp.campaign}")
    return None


def make_transports(ctx: BzrContext, sp: StorePath, writable: bool) -> tuple[Transport, Transport]:
    root = jailed_transport(str(ctx.store.repository_path(sp.codebase)), readonly=not writable)
    transport = root.clone(sp.relpath) if sp.relpath else root
    return transport, root


async def smart_endpoint(request: Request, path: str, interface: Interface) -> Response:
    """``path`` is what follows the interface's prefix: ``codebase[/campaign[/role]]/.bzr/smart``."""
    ctx = get_context(request)
    path = "/" + path
    if not path.endswith(SMART_SUFFIX):
        return text_error(404, "not found")
    path = path[: -len(SMART_SUFFIX)]
    try:
        sp = parse_store_path(path)
    except BadPath as e:
        return text_error(e.status, str(e))
    if request.method != "POST":
        return text_error(405, "smart protocol requests must be POSTed", {"Allow": "POST"})
    problem = await check_names(request, ctx, sp)
    if problem is not None:
        return problem
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > ctx.settings.client_max_size):
        return text_error(413, f"request body larger than {ctx.settings.client_max_size} bytes")

    # Read just enough of the body to know the verb.
    idle = ctx.settings.body_idle_timeout
    stream = request.stream().__aiter__()
    head = b""
    verb: bytes | type[Unknown] | None = Unknown
    ended = False
    while verb is Unknown and len(head) < SNIFF_LIMIT:
        try:
            async with asyncio.timeout(idle):
                head += await stream.__anext__()
        except StopAsyncIteration:
            ended = True
            break
        except TimeoutError:
            ctx.metrics.requests.labels(interface, "other", "stalled").inc()
            return text_error(408, f"no request body for {idle:g}s", {"Connection": "close"})
        verb = sniff_verb(head)
    # A request whose verb cannot be read from its head (at most REQUEST_HEAD_LIMIT
    # bytes of request line, or of protocol-3 header and of arguments) is
    # never run: the decision to ask for credentials must be made on the
    # real verb (a protocol-3 header of a MiB hid it before), and Breezy's
    # protocol-1 parser looks for the request line over the whole body again
    # with every chunk (200 MiB without a newline: a minute of CPU).
    if verb is None or (verb is Unknown and not ended):
        ctx.metrics.requests.labels(interface, "other", "unparsable").inc()
        logger.info("%s smart %s: no request line or header within %d bytes; refused", interface, path, SNIFF_LIMIT)
        return Response(protocol_error(head), media_type="application/octet-stream", headers={"Connection": "close"})
    # Verbs Breezy does not know, and requests cut short, are run read-only
    # so Breezy answers them with its protocol error.
    verb_kind = verb_class(verb) if isinstance(verb, bytes) else None
    kind = verb_kind or "other"
    logger.debug(
        "%s smart %s %r (%s)%s",
        interface,
        path,
        verb,
        kind,
        " with credentials" if "authorization" in request.headers else "",
    )

    writable = True
    if interface == "public":
        creds = parse_basic(request.headers.get("authorization"))
        if creds is not None:
            if not await ctx.credentials.check(get_engine(request), *creds):
                ctx.metrics.requests.labels(interface, kind, "denied").inc()
                return text_error(401, "invalid credentials", CHALLENGE)
        elif "authorization" in request.headers:
            return text_error(401, "unsupported authorization", CHALLENGE)
        else:
            writable = False
            if verb_kind == "write":
                ctx.metrics.requests.labels(interface, kind, "challenged").inc()
                return text_error(401, "authentication required to write", CHALLENGE)

    # Write requests on one repository run one at a time, across threads and
    # processes (replicas on a shared volume): a push whose insert commits
    # while another's autopack removes the packs it read fails in Breezy with
    # NoSuchFile (seen with two processes pushing at once). Reads retry on
    # their own when packs move, and are not held up.
    writes = writable and verb_kind == "write"
    lock = ctx.store.repository_path(sp.codebase) / WRITE_LOCK if writes else None
    # Only writes create: the codebase's shared repository on the first one
    # (again if it was removed meanwhile), and campaign/ for a push onto
    # campaign/role (Breezy does not create parents). Reads of what does
    # not exist are answered "no such branch" by Breezy, and leave nothing.
    prepare = (lambda: ctx.store.prepare_write(sp)) if writes else None
    # Requests in progress are bounded: each holds up to QUEUE_DEPTH chunks
    # of body and of response. Beyond the bound, a clear 503 rather than a wait.
    if ctx.smart_active >= ctx.settings.max_smart_requests:
        ctx.metrics.requests.labels(interface, kind, "busy").inc()
        return text_error(503, "too many smart requests in progress; try again", {"Retry-After": "5"})
    call = SmartCall(
        lambda: make_transports(ctx, sp, writable),
        asyncio.get_running_loop(),
        ctx.executor,
        write_lock=lock,
        prepare=prepare,
        idle_timeout=idle,
    )

    async def body() -> AsyncIterator[bytes]:
        if head:
            yield head
        while True:
            try:
                async with asyncio.timeout(idle):  # no task per chunk, as wait_for makes
                    chunk = await stream.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise BodyStalled() from None
            yield chunk

    metrics = ctx.metrics
    metrics.active.labels(interface).inc()
    ctx.smart_active += 1
    finished = False
    streaming = False
    try:
        try:
            size = await call.feed(body(), ctx.settings.client_max_size)
        except BodyStalled:
            metrics.requests.labels(interface, kind, "stalled").inc()
            logger.info("%s smart %s: no body bytes for %gs; dropped", interface, path, idle)
            return text_error(408, f"request body stalled for {idle:g}s", {"Connection": "close"})
        if size < 0:
            call.abandon()
            metrics.requests.labels(interface, kind, "too-large").inc()
            return text_error(413, f"request body larger than {ctx.settings.client_max_size} bytes")
        metrics.bytes_in.labels(interface).inc(size)
        first = await call.next_item()
        if isinstance(first, Refused):
            # A symlink planted in the store, leading outside it.
            finished = True
            metrics.requests.labels(interface, kind, "refused").inc()
            logger.warning("refusing %s: it resolves outside the store", path)
            return text_error(404, f"not found: {path}")
        if isinstance(first, NotUsable):
            finished = True
            metrics.requests.labels(interface, kind, "failed").inc()
            logger.error("repository for %s not usable: %s", sp.codebase, first)
            return text_error(503, f"repository not openable: {sp.codebase}")
        if isinstance(first, NoSpace):
            finished = True
            metrics.requests.labels(interface, kind, "no-space").inc()
            return text_error(507, f"the store cannot take this push now: {first}; nothing was changed")
        if isinstance(first, BaseException):
            metrics.requests.labels(interface, kind, "failed").inc()
            return text_error(500, "smart request failed")
        assert isinstance(first, bytes | Last)
        outcome = response_outcome(first.data if isinstance(first, Last) else first)
        metrics.requests.labels(interface, kind, outcome).inc()

        # Breezy's HTTP client keeps connections alive but cannot finish a
        # chunked response: it leaves the last chunk on the socket, its next
        # request on that connection fails after being sent, and it sends it
        # again elsewhere -- running lock_write or insert_stream twice. So a
        # response that is complete within RESPONSE_HOLD and RESPONSE_BUFFER,
        # its parts no more than RESPONSE_GAP apart, goes out whole with a
        # Content-Length on the kept-alive connection; a longer, larger or
        # slower one is streamed as it is produced, so the client works on it
        # meanwhile, on a connection closed after it.
        held: list[bytes] = []
        held_size = 0
        item: object = first  # the next item not yet in ``held`` (None: none taken)
        deadline = asyncio.get_running_loop().time() + RESPONSE_HOLD
        next_get: asyncio.Future[object] | None = None
        while isinstance(item, bytes):
            held.append(item)
            held_size += len(item)
            item = None
            if held_size >= RESPONSE_BUFFER:
                break
            next_get = asyncio.ensure_future(call.next_item())
            remaining = deadline - asyncio.get_running_loop().time()
            done, _ = await asyncio.wait({next_get}, timeout=min(max(remaining, 0), RESPONSE_GAP))
            if not done:
                break
            item, next_get = next_get.result(), None
        if isinstance(item, Last):
            finished = True
            held.append(item.data)
            held_size += len(item.data)
            metrics.bytes_out.labels(interface).inc(held_size)
            return Response(b"".join(held), media_type="application/octet-stream")
        if isinstance(item, BaseException):
            finished = True
            return text_error(500, "smart request failed")

        async def produce() -> AsyncIterator[bytes]:
            nonlocal finished
            try:
                # What is held goes out first: the client starts on it while
                # the worker produces the rest.
                for chunk in held:
                    metrics.bytes_out.labels(interface).inc(len(chunk))
                    yield chunk
                held.clear()
                pending: object = await (next_get if next_get is not None else call.next_item())
                while True:
                    if isinstance(pending, BaseException):
                        logger.error("smart response cut short: %s", pending)
                        return
                    data = pending.data if isinstance(pending, Last) else pending
                    assert isinstance(data, bytes)
                    metrics.bytes_out.labels(interface).inc(len(data))
                    if data:
                        yield data
                    if isinstance(pending, Last):
                        break
                    pending = await call.next_item()
                finished = True
            finally:
                if not finished:
                    call.abandon()
                metrics.active.labels(interface).dec()
                ctx.smart_active -= 1

        streaming = True
        return StreamingResponse(produce(), media_type="application/octet-stream", headers={"Connection": "close"})
    finally:
        if not streaming:  # otherwise the response generator owns the call
            if not finished:
                call.abandon()
            metrics.active.labels(interface).dec()
            ctx.smart_active -= 1


async def repository_list(request: Request, base: str) -> Response:
    media_type = negotiate(request.headers.get("accept"), LIST_TYPES)
    ctx = get_context(request)
    names = await run_blocking(ctx, ctx.store.list_repositories)
    if media_type == "application/json":
        return JSONResponse(names)
    if media_type == "text/plain":
        return PlainTextResponse("".join(n + "\n" for n in names))
    items = "".join(f'<li><a href="{html.escape(base + n)}/">{html.escape(n)}</a></li>' for n in names)
    return HTMLResponse(
        f"<!DOCTYPE html><html><head><title>Repositories</title></head><body><ul>{items}</ul></body></html>"
    )


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


def public_router() -> APIRouter:
    router = APIRouter()

    @router.get("/", responses=answers(["text/html"]))
    async def index() -> HTMLResponse:
        return HTMLResponse(
            "<!DOCTYPE html><html><head><title>Janitor Bazaar store</title></head><body>"
            "<h1>Janitor Bazaar store</h1>"
            '<p>Repositories: <a href="/bzr/">/bzr/</a>. Branch with '
            "<code>brz branch bzr+http://HOST/bzr/CODEBASE/CAMPAIGN/main</code>.</p></body></html>"
        )

    @router.get("/bzr/", responses=answers(LIST_TYPES, 406))
    async def list_repositories(request: Request) -> Response:
        return await repository_list(request, "/bzr/")

    async def smart(request: Request) -> Response:
        return await smart_endpoint(request, request.path_params["path"], "public")

    router.add_route("/bzr/{path:path}", smart, methods=SMART_METHODS, include_in_schema=False)

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


__all__ = ["admin_router", "json", "public_router"]
