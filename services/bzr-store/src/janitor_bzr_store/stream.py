"""The smart protocol over a byte stream: ``bzr://`` (anonymous, read-only) on ``--bzr-port``.

A stream carries one request after another, as ``bzr serve --inet`` reads
them; ``MessageSplitter`` finds where each protocol-3 message ends while its
body is still arriving. Each request then runs as one over HTTP does:
its verb read first, a ``SmartCall`` on the worker pool fed as bytes come,
the same jail (rooted at the store, read-only here, lock directories
hidden), the same bounds on memory and on clients that stall, and its
answer written back as it is produced. Clients send absolute paths
(``/codebase/campaign/main``), so the jail's root is the store and the
client's root is ``/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .jail import jailed_transport
from .smart import BodyStalled, Last, NotUsable, Refused, SmartCall
from .smart_bytes import (
    REQUEST_HEAD_LIMIT,
    MessageSplitter,
    NotProtocolThree,
    Unknown,
    error_response,
    protocol_error,
    response_outcome,
    sniff_verb,
    verb_class,
)

if TYPE_CHECKING:  # the context starts this server: a type only, not an import cycle
    from .context import BzrContext

logger = logging.getLogger(__name__)
INTERFACE = "bzr"
SNIFF_LIMIT = 2 * REQUEST_HEAD_LIMIT + 64
READ_SIZE = 64 * 1024


class ConnectionClosed(Exception):
    """The client closed the connection, or stopped sending (or reading) for too long."""


class MessageReader:
    """The pieces of one message after another, from a stream reader, each read within ``idle`` seconds."""

    def __init__(self, reader: asyncio.StreamReader, idle: float) -> None:
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
    def __init__(self, writer: asyncio.StreamWriter, idle: float) -> None:
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


async def serve_connection(ctx: BzrContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One client's requests, until it closes the connection, stalls, or sends what cannot be a request."""
    peer = writer.get_extra_info("peername")
    address = str(peer[0]) if peer else "-"
    limits = ctx.stream_limits
    if not limits.take(address):
        logger.warning("bzr:// from %s refused: %d connections from there already", address, limits.limit)
        ctx.metrics.requests.labels(INTERFACE, "other", "busy").inc()
        writer.close()
        return
    messages = MessageReader(reader, ctx.settings.body_idle_timeout)
    out = Writer(writer, ctx.settings.body_idle_timeout)
    served = 0
    try:
        while await serve_request(ctx, messages, out):
            served += 1
    except ConnectionClosed as e:
        logger.debug("bzr:// %s: %s after %d request(s)", address, e, served)
    except NotProtocolThree as e:
        # Protocol 3 only (every brz and bzr since 1.6 speaks it): an error in protocol 1, then closed.
        logger.info("bzr:// %s: %s; closed", address, e)
        ctx.metrics.requests.labels(INTERFACE, "other", "unparsable").inc()
        with contextlib.suppress(ConnectionClosed):
            await out.send(protocol_error(b""))
    finally:
        limits.give_back(address)
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def serve_request(ctx: BzrContext, messages: MessageReader, out: Writer) -> bool:
    """Run the next request of the stream; False when the connection should close."""
    # Between requests a client may think for a while; within one it must keep sending.
    head, ended = await messages.next_piece(idle=ctx.settings.stream_idle_timeout)
    verb = sniff_verb(head)
    while verb is Unknown and not ended and len(head) < SNIFF_LIMIT:
        piece, ended = await messages.next_piece()
        head += piece
        verb = sniff_verb(head)
    if verb is None or (verb is Unknown and not ended):
        ctx.metrics.requests.labels(INTERFACE, "other", "unparsable").inc()
        await out.send(protocol_error(head))
        return False
    kind = verb_class(verb) if isinstance(verb, bytes) else None
    kind_label = kind or "other"
    if ctx.smart_active >= ctx.settings.max_smart_requests:
        ctx.metrics.requests.labels(INTERFACE, kind_label, "busy").inc()
        await out.send(error_response(head, b"error", b"too many smart requests in progress; try again"))
        return False

    store_root = str(ctx.store.root)
    call = SmartCall(
        lambda: (jailed_transport(store_root, readonly=True),) * 2,
        asyncio.get_running_loop(),
        ctx.executor,
        idle_timeout=ctx.settings.body_idle_timeout,
        root_client_path="/",
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
    ctx.metrics.active.labels(INTERFACE).inc()
    finished = False
    try:
        try:
            size = await call.feed(body(), ctx.settings.client_max_size)
        except BodyStalled:
            ctx.metrics.requests.labels(INTERFACE, kind_label, "stalled").inc()
            return False
        if size < 0:
            ctx.metrics.requests.labels(INTERFACE, kind_label, "too-large").inc()
            return False
        ctx.metrics.bytes_in.labels(INTERFACE).inc(size)
        first = True
        while True:
            item = await call.next_item()
            if isinstance(item, Refused | NotUsable):
                finished = True
                logger.warning("bzr:// request refused: %s", item)
                ctx.metrics.requests.labels(INTERFACE, kind_label, "refused").inc()
                await out.send(error_response(head, b"error", b"not found"))
                return True
            if isinstance(item, BaseException):
                finished = True
                ctx.metrics.requests.labels(INTERFACE, kind_label, "failed").inc()
                return False
            assert isinstance(item, bytes | Last)
            data = item.data if isinstance(item, Last) else item
            if first and (data or isinstance(item, Last)):
                ctx.metrics.requests.labels(INTERFACE, kind_label, response_outcome(data)).inc()
                first = False
            ctx.metrics.bytes_out.labels(INTERFACE).inc(len(data))
            await out.send(data)
            if isinstance(item, Last):
                finished = True
                return True
    finally:
        if not finished:
            call.abandon()
        ctx.smart_active -= 1
        ctx.metrics.active.labels(INTERFACE).dec()


async def start_bzr_server(ctx: BzrContext, host: str, port: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_connection(ctx, reader, writer)

    server = await asyncio.start_server(handle, host, port, limit=READ_SIZE)
    logger.info("serving bzr:// (anonymous, read-only) on %s:%d", host, port)
    return server
