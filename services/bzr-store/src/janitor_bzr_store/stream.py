"""The smart protocol over a byte stream: ``bzr://`` (anonymous, read-only), and ``bzr+ssh://``'s channels.

A stream carries one request after another, as ``bzr serve --inet`` reads
them; ``MessageSplitter`` finds where each protocol-3 message ends while its
body is still arriving. Each request then runs as one over HTTP does:
its verb read first, a ``SmartCall`` on the worker pool fed as bytes come,
the same jail (rooted at the store, read-only here, lock directories
hidden), the same bounds on memory and on clients that stall, and its
answer written back as it is produced. Clients send absolute paths
(``/codebase/campaign/main``), so the jail's root is the store and the
client's root is ``/``.

A worker's write request (over SSH) is checked as over HTTP, on the path it
names: a known codebase and campaign, the worker's grants, then run under
the codebase's write lock, audited. Its transport may write only inside
that codebase (and within the granted campaigns), whatever other paths the
request names (``Grants.write_policy``, as over HTTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .access import ANYWHERE, Grants
from .audit import WriteRequest, read_tip
from .jail import jailed_transport
from .smart import BodyStalled, Last, NotUsable, Refused, SmartCall
from .smart_bytes import (
    REQUEST_HEAD_LIMIT,
    MessageSplitter,
    NotProtocolThree,
    Unknown,
    error_response,
    protocol_error,
    request_args,
    response_outcome,
    sniff_verb,
    verb_class,
    verb_info,
)
from .store import BadPath, StorePath, parse_store_path

if TYPE_CHECKING:  # the context starts this server: a type only, not an import cycle
    from .context import BzrContext

logger = logging.getLogger(__name__)
INTERFACE = "bzr"


@dataclass(frozen=True)
class StreamAccess:
    """Who is at the other end of a stream: anonymous and read-only, or a worker (over SSH)."""

    interface: str = INTERFACE
    writable: bool = False
    worker: str | None = None
    grants: Grants = ANYWHERE


ANONYMOUS = StreamAccess()


class Reader(Protocol):
    async def read(self, n: int = -1) -> Any: ...


class RawWriter(Protocol):
    def write(self, data: Any) -> Any: ...

    async def drain(self) -> None: ...


SNIFF_LIMIT = 2 * REQUEST_HEAD_LIMIT + 64
READ_SIZE = 64 * 1024


class ConnectionClosed(Exception):
    """The client closed the connection, or stopped sending (or reading) for too long."""


class MessageReader:
    """The pieces of one message after another, from a stream reader, each read within ``idle`` seconds."""

    def __init__(self, reader: Reader, idle: float) -> None:
        self.reader = reader
        self.idle = idle
        self.splitter = MessageSplitter()
        self.pending: deque[tuple[bytes, bool]] = deque()

    async def next_piece(self, idle: float | None = None) -> tuple[bytes, bool]:
        while not self.pending:
            try:
                async with asyncio.timeout(self.idle if idle is None else idle):
                    data = await self.reader.read(READ_SIZE)
            except TimeoutError:
                raise ConnectionClosed("idle") from None
            if not data:
                raise ConnectionClosed("closed")
            self.pending.extend(self.splitter.feed(data))
        return self.pending.popleft()


class Writer:
    def __init__(self, writer: RawWriter, idle: float) -> None:
        self.writer = writer
        self.idle = idle

    async def send(self, data: bytes) -> None:
        if not data:
            return
        self.writer.write(data)
        try:
            async with asyncio.timeout(self.idle):
                await self.writer.drain()
        except TimeoutError:
            raise ConnectionClosed("client read nothing") from None
        except (ConnectionError, OSError):
            raise ConnectionClosed("reset") from None


async def handle_bzr_tcp(ctx: BzrContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A ``bzr://`` connection: anonymous, read-only, at most ``max_connections_per_address`` from one address."""
    peer = writer.get_extra_info("peername")
    address = str(peer[0]) if peer else "-"
    limits = ctx.stream_limits
    if not limits.take(address):
        logger.warning("bzr:// from %s refused: %d connections from there already", address, limits.limit)
        ctx.metrics.requests.labels(INTERFACE, "other", "busy").inc()
        writer.close()
        return
    try:
        await serve_stream(ctx, reader, writer, ANONYMOUS, address)
    finally:
        limits.give_back(address)
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def serve_stream(ctx: BzrContext, reader: Reader, writer: RawWriter, access: StreamAccess, address: str) -> None:
    """One stream's requests, until the client closes it, stalls, or sends what cannot be a request."""
    messages = MessageReader(reader, ctx.settings.body_idle_timeout)
    out = Writer(writer, ctx.settings.body_idle_timeout)
    served = 0
    try:
        while await serve_request(ctx, messages, out, access, address):
            served += 1
    except ConnectionClosed as e:
        logger.debug("%s %s: %s after %d request(s)", access.interface, address, e, served)
    except NotProtocolThree as e:
        # Protocol 3 only (every brz and bzr since 1.6 speaks it): an error in protocol 1, then closed.
        logger.info("%s %s: %s; closed", access.interface, address, e)
        ctx.metrics.requests.labels(access.interface, "other", "unparsable").inc()
        with contextlib.suppress(ConnectionClosed):
            await out.send(protocol_error(b""))


def target_of(args: list[bytes]) -> StorePath | None:
    """The branch or repository a request names: its first argument that reads as a path into the store.

    Verbs take their path first, save the ones that take a format's name
    before it (``BzrDirFormat.initialize_ex_1.16``), which is no name a path
    of the store can have. A path has a ``/`` (``codebase/``,
    ``/codebase/campaign/main/``, relative or absolute as clients send
    them); lock tokens and other words have none.
    """
    for arg in args:
        if b"/" not in arg:
            continue
        try:
            parts = arg.decode("utf-8").strip("/").split("/")
        except UnicodeDecodeError:
            continue
        names: list[str] = []
        for part in parts[:3]:
            if part in ("", ".bzr"):
                break
            names.append(part)
        try:
            return parse_store_path("/".join(names))
        except BadPath:
            continue
    return None


async def serve_request(
    ctx: BzrContext, messages: MessageReader, out: Writer, access: StreamAccess, address: str
) -> bool:
    """Run the next request of the stream; False when the connection should close."""
    # Between requests a client may think for a while; within one it must keep sending.
    head, ended = await messages.next_piece(idle=ctx.settings.stream_idle_timeout)
    verb = sniff_verb(head)
    while verb is Unknown and not ended and len(head) < SNIFF_LIMIT:
        piece, ended = await messages.next_piece()
        head += piece
        verb = sniff_verb(head)
    if verb is None or (verb is Unknown and not ended):
        ctx.metrics.requests.labels(access.interface, "other", "unparsable").inc()
        await out.send(protocol_error(head))
        return False
    kind = verb_class(verb) if isinstance(verb, bytes) else None
    kind_label = kind or "other"
    if ctx.smart_active >= ctx.settings.max_smart_requests:
        ctx.metrics.requests.labels(access.interface, kind_label, "busy").inc()
        await out.send(error_response(head, b"error", b"too many smart requests in progress; try again"))
        return False

    store_root = str(ctx.store.root)
    writes = access.writable and kind == "write"
    audited: WriteRequest | None = None
    may_write: Callable[[str], bool] | None = None
    sp: StorePath | None = None
    if writes:
        sp = target_of(request_args(head))
        refusal = await write_refusal(ctx, access, sp)
        if refusal is not None:
            assert isinstance(verb, bytes)
            ctx.metrics.requests.labels(access.interface, kind_label, "forbidden").inc()
            request = WriteRequest(
                access.interface,
                access.worker,
                address,
                sp.codebase if sp else "?",
                sp.campaign if sp else None,
                sp.role if sp else None,
                verb.decode("utf-8", "replace"),
                verb_info(verb),
            )
            ctx.auditor.refused(request, refusal)
            await drain_request(messages, ended)
            where = f"{sp.codebase}/{sp.campaign or ''}".rstrip("/") if sp else "?"
            await out.send(error_response(head, b"PermissionDenied", where.encode(), refusal.encode()))
            return True
        assert sp is not None and isinstance(verb, bytes)
        audited = WriteRequest(
            access.interface,
            access.worker,
            address,
            sp.codebase,
            sp.campaign,
            sp.role,
            verb.decode("utf-8", "replace"),
            verb_info(verb),
        )
        may_write = access.grants.write_policy(store_root, sp.codebase)
    target = sp

    def transports() -> tuple[Any, Any]:
        transport = jailed_transport(store_root, readonly=not writes, may_write=may_write)
        return transport, transport

    call = SmartCall(
        transports,
        asyncio.get_running_loop(),
        ctx.executor,
        write_lock=ctx.store.write_lock_path(target.codebase) if writes and target else None,
        prepare=(lambda: ctx.store.prepare_write(target)) if writes and target else None,
        idle_timeout=ctx.settings.body_idle_timeout,
        root_client_path="/",
        observe=(lambda: read_tip(ctx.store, target)) if audited is not None and target is not None else None,
    )

    async def body() -> AsyncIterator[bytes]:
        yield head
        done = ended
        while not done:
            try:
                piece, done = await messages.next_piece()
            except ConnectionClosed as e:
                if str(e) == "idle":
                    raise BodyStalled() from None
                raise
            yield piece

    ctx.smart_active += 1
    ctx.metrics.active.labels(access.interface).inc()
    finished = False
    try:
        try:
            size = await call.feed(body(), ctx.settings.client_max_size)
        except BodyStalled:
            ctx.metrics.requests.labels(access.interface, kind_label, "stalled").inc()
            return False
        if size < 0:
            ctx.metrics.requests.labels(access.interface, kind_label, "too-large").inc()
            return False
        ctx.metrics.bytes_in.labels(access.interface).inc(size)
        first = True
        outcome = "other"
        while True:
            item = await call.next_item()
            if isinstance(item, Refused | NotUsable):
                finished = True
                logger.warning("bzr:// request refused: %s", item)
                ctx.metrics.requests.labels(access.interface, kind_label, "refused").inc()
                await out.send(error_response(head, b"error", b"not found"))
                return True
            if isinstance(item, BaseException):
                finished = True
                ctx.metrics.requests.labels(access.interface, kind_label, "failed").inc()
                return False
            assert isinstance(item, bytes | Last)
            data = item.data if isinstance(item, Last) else item
            if first and (data or isinstance(item, Last)):
                outcome = response_outcome(data)
                ctx.metrics.requests.labels(access.interface, kind_label, outcome).inc()
                first = False
            ctx.metrics.bytes_out.labels(access.interface).inc(len(data))
            await out.send(data)
            if isinstance(item, Last):
                finished = True
                if audited is not None:
                    ctx.auditor.accepted(audited, outcome, call.observed_before, call.observed_after)
                return True
    finally:
        if not finished:
            call.abandon()
        ctx.smart_active -= 1
        ctx.metrics.active.labels(access.interface).dec()


async def write_refusal(ctx: BzrContext, access: StreamAccess, sp: StorePath | None) -> str | None:
    """Why a worker's write request may not run, or None when it may."""
    if sp is None:
        return "cannot tell which codebase this request writes to"
    if not await ctx.codebases.exists(ctx.engine, sp.codebase):
        return f"no such codebase: {sp.codebase}"
    if sp.campaign is not None and sp.campaign not in ctx.campaigns:
        return f"no such campaign: {sp.campaign}"
    if not access.grants.allows(sp.codebase, sp.campaign):
        where = sp.codebase + (f"/{sp.campaign}" if sp.campaign else "")
        return f"worker {access.worker} may not write to {where} (its grants: {access.grants.describe()})"
    return None


async def drain_request(messages: MessageReader, ended: bool) -> None:
    """Read the rest of a request that will not run, so the next one starts where it should."""
    while not ended:
        _, ended = await messages.next_piece()


async def start_bzr_server(ctx: BzrContext, host: str, port: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handle_bzr_tcp(ctx, reader, writer)

    server = await asyncio.start_server(handle, host, port, limit=READ_SIZE)
    logger.info("serving bzr:// (anonymous, read-only) on %s:%d", host, port)
    return server
