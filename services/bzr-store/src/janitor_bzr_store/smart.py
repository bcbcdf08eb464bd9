"""Breezy's smart protocol over HTTP, streamed both ways and off the event loop.

Breezy's own WSGI server reads the whole request body, runs the request and
buffers the whole response, so a 300 MB push costs 300 MB (and more) of
server memory. Here each request runs in a worker thread that is fed the body
as it arrives and whose output is handed to the event loop in bounded
chunks: the thread blocks when the client reads slowly, so memory stays flat
whatever the size of a fetch or push.

The first bytes of a request also tell its verb, which the public interface
uses to decide whether to ask for credentials before anything runs.
"""

from __future__ import annotations

import asyncio
import collections
import fcntl
import logging
import queue
import struct
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from breezy import errors as bzr_errors
from breezy.bzr.smart import medium, protocol, request
from breezy.transport import Transport
from fastbencode import bdecode

from . import insert, parents

insert.install()
parents.install()

logger = logging.getLogger(__name__)

V3_PREFIX = protocol.MESSAGE_VERSION_THREE  # b"bzr message 3 (bzr 1.6)\n"
V2_PREFIX = protocol.REQUEST_VERSION_TWO  # b"bzr request 2\n"
INCOMPLETE = b"error\x01incomplete request\n"
# Our answer when Breezy's protocol code itself fails on a malformed request
# (it does, for example, on a protocol-1 request whose verb is not ASCII).
BAD_REQUEST = b"error\x01Generic bzr smart protocol error: bad request\n"
OUT_CHUNK = 64 * 1024  # largest hand-over to the event loop
# Output in older protocols is held back for the end of the request only up
# to this size (see Output).
SMALL_RESPONSE = 4 * 1024
QUEUE_DEPTH = 8  # chunks in flight each way: bounds memory per request
_EOF = object()


class Unknown:
    """Not enough bytes yet to tell the verb."""


def sniff_verb(data: bytes) -> bytes | type[Unknown] | None:
    """The verb of a smart request from its first bytes.

    Returns ``Unknown`` when more bytes are needed, ``None`` when the bytes
    are not a request we can parse (Breezy will answer with a protocol error).
    """
    if data.startswith(V3_PREFIX):
        rest = data[len(V3_PREFIX) :]
        if len(rest) < 4:
            return Unknown
        (hlen,) = struct.unpack("!L", rest[:4])
        rest = rest[4 + hlen :]
        if rest[:1] not in (b"", b"s"):
            return None
        if len(rest) < 5:
            return Unknown
        (alen,) = struct.unpack("!L", rest[1:5])
        if len(rest) < 5 + alen:
            return Unknown
        try:
            args = bdecode(rest[5 : 5 + alen])
        except Exception:
            return None
        if isinstance(args, list | tuple) and args and isinstance(args[0], bytes):
            return bytes(args[0])
        return None
    if V3_PREFIX.startswith(data) or V2_PREFIX.startswith(data):
        return Unknown
    line_start = len(V2_PREFIX) if data.startswith(V2_PREFIX) else 0
    end = data.find(b"\n", line_start)
    if end == -1:
        return Unknown if len(data) < 4096 else None
    verb = data[line_start:end].split(b"\x01", 1)[0]
    return verb or None


def verb_class(verb: bytes) -> str | None:
    """'read' or 'write' for a verb Breezy's server knows, None for any other."""
    try:
        info = request.request_handlers.get_info(verb)
    except KeyError:
        return None
    return "read" if info == "read" else "write"


def response_outcome(first: bytes) -> str:
    """'success' or 'error' from the start of a protocol-3 response, else 'other'."""
    if not first.startswith(V3_PREFIX):
        return "error" if first.startswith(b"error") else "other"
    rest = first[len(V3_PREFIX) :]
    if len(rest) < 4:
        return "other"
    (hlen,) = struct.unpack("!L", rest[:4])
    status = rest[4 + hlen : 4 + hlen + 2]
    if status == b"oS":
        return "success"
    if status == b"oE":
        return "error"
    return "other"


def v3_complete(data: bytes | bytearray) -> bool | None:
    """Whether ``data`` is exactly one whole protocol-3 message; None when it is not protocol 3.

    A message is the version line, a length-prefixed headers part, then
    parts: ``o`` + status byte, ``s`` + length-prefixed structure, ``b`` +
    length-prefixed body (one, or one per chunk of a stream), and ``e`` last.
    """
    if not data.startswith(V3_PREFIX):
        return None
    pos = len(V3_PREFIX)
    if len(data) < pos + 4:
        return False
    pos += 4 + struct.unpack_from("!L", data, pos)[0]
    while pos < len(data):
        kind = data[pos : pos + 1]
        pos += 1
        if kind == b"e":
            return bool(pos == len(data))
        if kind == b"o":
            pos += 1
        elif kind in (b"s", b"b"):
            if len(data) < pos + 4:
                return False
            pos += 4 + struct.unpack_from("!L", data, pos)[0]
        else:
            return False
    return False


@dataclass(frozen=True)
class Last:
    """The final bytes of a response (possibly empty); nothing follows."""

    data: bytes


class Aborted(Exception):
    """The client went away; the worker thread stops producing."""


class NotUsable(Exception):
    """The request's ``prepare`` step failed: the repository cannot be used."""


class Refused(Exception):
    """The request's path leads outside the store (a symlink planted in it)."""


class Outbox:
    """Items from a worker thread to the event loop, at most ``depth`` in flight.

    The worker takes a slot and schedules the item's delivery on the loop
    without waiting for it (an ``asyncio.Queue`` fed with
    ``run_coroutine_threadsafe`` cost a task, a future and a wait for the
    loop's answer per item); the loop gives the slot back when it takes the
    item, so a slow client still stops the worker.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, depth: int = QUEUE_DEPTH) -> None:
        self.loop = loop
        self.slots = threading.Semaphore(depth)
        self.items: collections.deque[object] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None

    # worker thread
    def put(self, item: object, cancelled: threading.Event) -> None:
        while not self.slots.acquire(timeout=1.0):
            if cancelled.is_set():
                raise Aborted()
        if cancelled.is_set():
            raise Aborted()
        try:
            self.loop.call_soon_threadsafe(self._deliver, item)
        except RuntimeError:  # the loop is closed: the service is stopping
            raise Aborted() from None

    # event loop
    def _deliver(self, item: object) -> None:
        self.items.append(item)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> object:
        while not self.items:
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        self.slots.release()
        return self.items.popleft()

    def release_worker(self) -> None:
        """Let a worker blocked on a full outbox go (and see that it was cancelled)."""
        self.items.clear()
        self.slots.release()


class Output:
    """Breezy's response bytes on their way to the event loop.

    Breezy calls ``write`` when its protocol encoder flushes: once at the end
    of a response, and after every chunk of a streamed body. A stream's
    flushes are handed over at once, in slices of at most OUT_CHUNK (so what
    is in flight stays bounded even when Breezy writes a 6 MB record at
    once), so the client gets its first records as soon as Breezy has them.
    A first flush that is a whole response is held, to travel with the end
    of the request (``take_rest``): the route then sends it whole on the
    kept-alive connection, even when Breezy's clean-up after it is slow.
    """

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self.emit = emit
        self.buffer = bytearray()
        self.sent = False
        self.flushes = 0

    def write(self, data: bytes) -> None:
        self.buffer.extend(data)
        self.flushes += 1
        if self.flushes == 1:
            complete = v3_complete(self.buffer)
            if complete or (complete is None and len(self.buffer) < SMALL_RESPONSE):
                return
        view = memoryview(self.buffer)
        try:
            for start in range(0, len(view), OUT_CHUNK):
                self.sent = True
                self.emit(bytes(view[start : start + OUT_CHUNK]))
        finally:
            view.release()
            self.buffer.clear()

    def replace_unsent(self, data: bytes) -> None:
        """Answer ``data`` instead, unless part of the response has gone out already."""
        if not self.sent:
            self.buffer[:] = data

    def take_rest(self) -> bytes:
        rest = bytes(self.buffer)
        self.buffer.clear()
        return rest


Transports = Callable[[], "tuple[Transport, Transport]"]


class SmartCall:
    """One smart request: fed by the event loop, run by a worker thread.

    ``open_transports`` gives the request's transport and the jail's root;
    it runs in the worker thread (it touches the file system), after
    ``prepare`` (directories a write needs), and with ``write_lock`` (see
    WRITE_LOCK in routes) held for writes.
    """

    def __init__(
        self,
        open_transports: Transports,
        loop: asyncio.AbstractEventLoop,
        *,
        write_lock: Path | None = None,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self.open_transports = open_transports
        self.loop = loop
        self.write_lock = write_lock
        self.prepare = prepare
        self.inbox: queue.Queue[object] = queue.Queue(QUEUE_DEPTH)
        self.outbox = Outbox(loop)
        self.cancelled = threading.Event()
        self.bytes_out = 0
        self._body_done = False

    # ---- worker thread side

    def _emit(self, item: object) -> None:
        self.outbox.put(item, self.cancelled)

    def _emit_counted(self, item: bytes | Last) -> None:
        self.bytes_out += len(item.data if isinstance(item, Last) else item)
        self._emit(item)

    def _next_chunk(self) -> object:
        item = self.inbox.get()
        if item is _EOF:
            self._body_done = True
        return item

    def _drain(self) -> None:
        """Take the rest of the body, so the event loop feeding it never waits on a full inbox."""
        while not self._body_done:
            try:
                item = self.inbox.get(timeout=1.0)
            except queue.Empty:
                if self.cancelled.is_set():
                    return
                continue
            self._body_done = item is _EOF

    def run(self) -> None:
        """Run the request to completion in this (worker) thread."""
        try:
            try:
                if self.prepare is not None:
                    self.prepare()
                transport, jail_root = self.open_transports()
            except bzr_errors.PathNotChild as e:
                self._emit(Refused(str(e)))
                return
            except OSError as e:
                self._emit(NotUsable(str(e)))
                return
            if self.write_lock is None:
                self._run(transport, jail_root)
                return
            with open(self.write_lock, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
                self._run(transport, jail_root)
        except Aborted:
            logger.info("client went away; smart request abandoned")
        finally:
            self._drain()

    def _run(self, transport: Transport, jail_root: Transport) -> None:
        out = Output(self._emit_counted)
        write = out.write

        server_protocol: Any = None
        head = b""
        broken = False

        def accept(data: bytes) -> None:
            nonlocal broken
            try:
                server_protocol.accept_bytes(data)
            except Exception as e:
                logger.warning("malformed smart request: %s: %s", type(e).__name__, e)
                broken = True
                out.replace_unsent(BAD_REQUEST)

        try:
            while True:
                item = self._next_chunk()
                if item is _EOF:
                    break
                assert isinstance(item, bytes)
                if server_protocol is None:
                    # Enough bytes to recognise the protocol version first.
                    head += item
                    if len(head) < len(V3_PREFIX) and V3_PREFIX.startswith(head):
                        continue
                    factory, unused = medium._get_protocol_factory_for_bytes(head)
                    server_protocol = factory(transport, write, None, jail_root)
                    item, head = unused, b""
                if broken or server_protocol.next_read_size() == 0:
                    continue  # finished (or failed) early: drain the rest unread
                accept(item)
            if server_protocol is None and head:
                factory, unused = medium._get_protocol_factory_for_bytes(head)
                server_protocol = factory(transport, write, None, jail_root)
                accept(unused)
            incomplete = server_protocol is None or (not broken and server_protocol.next_read_size() != 0)
            if incomplete:
                # What Breezy's HTTP server answers, and clients expect, for a
                # truncated request (or one in a protocol we do not speak).
                out.replace_unsent(INCOMPLETE)
            # The last bytes and the end travel together: one hand-over, not two.
            self._emit_counted(Last(out.take_rest()))
        except Aborted:
            logger.info("client went away; smart request abandoned")
        except BaseException as e:
            logger.exception("smart request failed")
            try:
                self._emit(e)
            except Aborted:
                pass

    # ---- event loop side

    async def feed(self, chunks: AsyncIterator[bytes], limit: int) -> int:
        """Pass the request body to the worker; returns its size, or -1 past ``limit``."""
        size = 0
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if size > limit:
                    return -1
                try:
                    self.inbox.put_nowait(chunk)
                except queue.Full:
                    await asyncio.to_thread(self.inbox.put, chunk)
            return size
        finally:
            try:
                self.inbox.put_nowait(_EOF)
            except queue.Full:
                await asyncio.to_thread(self.inbox.put, _EOF)

    async def next_item(self) -> object:
        return await self.outbox.get()

    def abandon(self) -> None:
        self.cancelled.set()
        self.outbox.release_worker()


ThreadRunner = Callable[[Callable[[], None]], "asyncio.Future[None]"]
