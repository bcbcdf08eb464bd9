"""The smart protocol over HTTP, for both interfaces: who may run what, and how the answer travels.

The request's verb is read from its first bytes and decides, before
anything runs, whether credentials are needed (a 401 challenge) or the
request is refused; the request then runs in the worker pool (``smart.py``)
and its answer is held for a Content-Length or streamed (see below).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from breezy.transport import Transport
from fastapi import Request
from starlette.responses import Response, StreamingResponse

from janitor_common.auth import CHALLENGE, parse_basic
from janitor_common.deps import get_engine

from .access import ANYWHERE, Grants
from .audit import WriteRequest, read_tip
from .context import BzrContext, get_context
from .http import Interface, text_error
from .jail import jailed_transport
from .smart import BodyStalled, Last, NoSpace, NotUsable, Refused, SmartCall
from .smart_bytes import (
    REQUEST_HEAD_LIMIT,
    Unknown,
    error_response,
    protocol_error,
    response_outcome,
    sniff_verb,
    verb_class,
    verb_info,
)
from .store import SMART_SUFFIX, BadPath, StorePath, parse_store_path

logger = logging.getLogger(__name__)
# Enough for a protocol-3 header and arguments each at their limit.
SNIFF_LIMIT = 2 * REQUEST_HEAD_LIMIT + 64
# Responses complete within this size and time are sent whole, with a
# Content-Length; others are streamed (see smart_endpoint).
RESPONSE_BUFFER = 1 << 20
RESPONSE_HOLD = 0.02
# ... and whose parts follow each other this closely: the slices of one flush
# do, the chunks of a stream (get_stream) do not, and waiting for a stream's
# end would only delay the records the client could be inserting.
RESPONSE_GAP = 0.003


async def check_names(request: Request, ctx: BzrContext, sp: StorePath) -> Response | None:
    if not await ctx.codebases.exists(get_engine(request), sp.codebase):
        return text_error(404, f"no such codebase: {sp.codebase}")
    if sp.campaign is not None and sp.campaign not in ctx.campaigns:
        return text_error(404, f"no such campaign: {sp.campaign}")
    return None


def make_transports(ctx: BzrContext, sp: StorePath, writable: bool, grants: Grants) -> tuple[Transport, Transport]:
    # Within the codebase by the jail already; the policy adds the grants' campaigns.
    may_write = grants.write_policy(str(ctx.store.root), sp.codebase) if writable and grants.patterns else None
    root = jailed_transport(str(ctx.store.repository_path(sp.codebase)), readonly=not writable, may_write=may_write)
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

    client = request.client.host if request.client else None
    verb_name = verb.decode("utf-8", "replace") if isinstance(verb, bytes) else "?"

    def write_request(worker: str | None) -> WriteRequest:
        return WriteRequest(
            interface, worker, client, sp.codebase, sp.campaign, sp.role, verb_name, verb_info(verb_name.encode())
        )

    writable = True
    worker: str | None = None
    grants = ANYWHERE
    if interface == "public":
        creds = parse_basic(request.headers.get("authorization"))
        if creds is not None:
            worker = creds[0]
            known = ctx.credentials.cached(*creds)
            if known is None:
                # Checked before the database is asked: a guessing client costs no bcrypt work.
                wait = ctx.brake.retry_after(client or "")
                if wait is not None:
                    ctx.metrics.requests.labels(interface, kind, "braked").inc()
                    if verb_kind == "write":
                        ctx.auditor.refused(write_request(worker), "too many failed authentications")
                    return text_error(429, "too many failed authentications; try later", {"Retry-After": str(wait)})
                known = await ctx.credentials.check(get_engine(request), *creds)
            if known is None:
                ctx.metrics.requests.labels(interface, kind, "denied").inc()
                if ctx.brake.failed(client or ""):
                    logger.warning("%s: %d failed authentications; braked", client, ctx.brake.limit)
                if verb_kind == "write":
                    ctx.auditor.refused(write_request(worker), "invalid credentials")
                return text_error(401, "invalid credentials", CHALLENGE)
            grants = known
        elif "authorization" in request.headers:
            return text_error(401, "unsupported authorization", CHALLENGE)
        else:
            writable = False
            if verb_kind == "write":
                ctx.metrics.requests.labels(interface, kind, "challenged").inc()
                ctx.auditor.refused(write_request(None), "no credentials")
                return text_error(401, "authentication required to write", CHALLENGE)
        if verb_kind == "write" and not grants.allows(sp.codebase, sp.campaign):
            where = sp.codebase + (f"/{sp.campaign}" if sp.campaign else "")
            reason = f"worker {worker} may not write to {where} (its grants: {grants.describe()})"
            ctx.metrics.requests.labels(interface, kind, "forbidden").inc()
            ctx.auditor.refused(write_request(worker), reason)
            # A smart error names the reason in brz's message ("Permission denied: ...").
            refusal = error_response(head, b"PermissionDenied", where.encode(), reason.encode())
            return Response(refusal, media_type="application/octet-stream", headers={"Connection": "close"})

    # Write requests on one repository run one at a time, across threads and
    # processes (replicas on a shared volume): a push whose insert commits
    # while another's autopack removes the packs it read fails in Breezy with
    # NoSuchFile (seen with two processes pushing at once). Reads retry on
    # their own when packs move, and are not held up.
    writes = writable and verb_kind == "write"
    lock = ctx.store.write_lock_path(sp.codebase) if writes else None
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
    # Audited: every write that runs, with the tip before and after it.
    audited = write_request(worker) if writes else None
    call = SmartCall(
        lambda: make_transports(ctx, sp, writable, grants),
        asyncio.get_running_loop(),
        ctx.executor,
        write_lock=lock,
        prepare=prepare,
        idle_timeout=idle,
        observe=(lambda: read_tip(ctx.store, sp)) if audited is not None else None,
    )

    def audit(outcome: str) -> None:
        if audited is not None:
            ctx.auditor.accepted(audited, outcome, call.observed_before, call.observed_after)

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
            audit(outcome)
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
                audit(outcome)
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
