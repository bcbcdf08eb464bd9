"""Breezy's smart protocol over HTTP, streamed both ways and off the event loop.

Breezy's own WSGI server reads the whole request body, runs the request and
buffers the whole response, so a 300 MB push costs 300 MB (and more) of
server memory. Here each request runs in a worker thread that is fed the body
as it arrives and whose output is handed to the event loop in bounded
chunks: the thread blocks when the client reads slowly, so memory stays flat
whatever the size of a fetch or push.

The bytes themselves (verbs, completeness, error answers) are read in
``smart_bytes``. This module is longer than most here on purpose: the pump
(``SmartCall``) and the two hand-overs it drives (``Outbox`` towards the
client, ``Output`` for what Breezy writes) are one mechanism with one set of
threading rules, and read best together.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import fcntl
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from breezy import errors as bzr_errors
from breezy.bzr.smart import medium
from breezy.transport import Transport

from .patches import insert
from .smart_bytes import BAD_REQUEST, INCOMPLETE, V3_PREFIX, v3_complete

logger = logging.getLogger(__name__)

OUT_CHUNK = 64 * 1024  # largest hand-over to the event loop
# Output in older protocols is held back for the end of the request only up
# to this size (see Output).
SMALL_RESPONSE = 4 * 1024
QUEUE_DEPTH = 8  # chunks in flight each way: bounds memory per request


@dataclass(frozen=True)
class Last:
    """The final bytes of a response (possibly empty); nothing follows."""

    data: bytes


class Aborted(Exception):
    """The client went away; the worker thread stops producing."""


class NotUsable(Exception):
    """The request's ``prepare`` step failed: the repository cannot be used."""


class NoSpace(Exception):
    """The store could not take a push (full disk, quota, read-only); nothing of the response went out."""


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

    def __init__(
        self, loop: asyncio.AbstractEventLoop, depth: int = QUEUE_DEPTH, idle_timeout: float | None = None
    ) -> None:
        self.loop = loop
        # A client that reads nothing of the response for this long is
        # dropped: its request would hold a pool thread for as long as it liked.
        self.idle_timeout = idle_timeout
        self.slots = threading.Semaphore(depth)
        self.items: collections.deque[object] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None

    # worker thread
    def put(self, item: object, cancelled: threading.Event) -> None:
        deadline = None if self.idle_timeout is None else time.monotonic() + self.idle_timeout
        while not self.slots.acquire(timeout=1.0):
            if cancelled.is_set():
                raise Aborted()
            if deadline is not None and time.monotonic() > deadline:
                logger.warning("client read nothing for %gs; dropping its smart response", self.idle_timeout)
                # Past the bound on purpose: the loop must learn the response ends here.
                with contextlib.suppress(RuntimeError):
                    self.loop.call_soon_threadsafe(self._deliver, Aborted("client stopped reading"))
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


class BodyStalled(Exception):
    """No byte of the request body arrived within the idle timeout."""


class SmartCall:
    """One smart request: fed by the event loop, run in a worker pool's threads.

    A thread is held only while there are body bytes to process (or a
    response to produce), never while the client is yet to send them: the
    event loop queues what arrives and starts a *pump* on the pool when none
    is running; the pump processes what is queued and returns when the queue
    is empty. Before, each request's thread waited on its body, so 32
    clients that sent part of a request and stalled held the whole pool and
    the public port answered nobody.

    ``open_transports`` gives the request's transport and the jail's root;
    it runs in the pool (it touches the file system), after ``prepare``
    (directories a write needs), and with ``write_lock`` (see WRITE_LOCK in
    store.py) held for writes, until the request ends. Breezy's handlers may
    thus run one chunk in one thread and the next in another, never two at
    once; what they keep per thread (the jail's transports) they set up and
    tear down around each call.

    ``observe`` (for the audit: a branch's tip) is read in the worker with
    the write lock held, once when the request starts and once when it
    ends, into ``observed_before`` and ``observed_after``: what the request
    itself changed, in the thread that already runs it rather than two
    more hand-overs to the pool.
    """

    def __init__(
        self,
        open_transports: Transports,
        loop: asyncio.AbstractEventLoop,
        executor: concurrent.futures.Executor,
        *,
        write_lock: Path | None = None,
        prepare: Callable[[], None] | None = None,
        idle_timeout: float = 60.0,
        root_client_path: str | None = None,
        observe: Callable[[], str | None] | None = None,
    ) -> None:
        self.open_transports = open_transports
        self.loop = loop
        self.executor = executor
        self.write_lock = write_lock
        self.prepare = prepare
        self.idle_timeout = idle_timeout
        # What the client's paths are relative to: "/" over a stream (bzr://,
        # bzr+ssh://), whose clients send absolute paths; None over HTTP.
        self.root_client_path = root_client_path
        self.observe = observe
        # Set by the worker before it hands over the item they come before.
        self.observed_before: str | None = None
        self.observed_after: str | None = None
        self.outbox = Outbox(loop, idle_timeout=idle_timeout)
        self.cancelled = threading.Event()
        self.bytes_out = 0
        # Body chunks waiting for the pump; None ends the body.
        self._pending: collections.deque[bytes | None] = collections.deque()
        self._guard = threading.Lock()
        self._pumping = False
        self._space = asyncio.Event()
        # Worker side, touched only by the one pump running at a time.
        self._started = False
        self._finished = False
        self._lock_file: IO[str] | None = None
        self._protocol: Any = None
        self._head = b""
        self._broken = False
        self._out: Output | None = None
        self._transports: tuple[Transport, Transport] | None = None
        self._no_space: str | None = None

    # ---- worker thread side

    def _emit(self, item: object) -> None:
        self.outbox.put(item, self.cancelled)

    def _emit_counted(self, item: bytes | Last) -> None:
        self.bytes_out += len(item.data if isinstance(item, Last) else item)
        self._emit(item)

    def _pump(self) -> None:
        """Process the queued chunks in order; return when none is left."""
        while True:
            with self._guard:
                if not self._pending:
                    self._pumping = False
                    return
                item = self._pending.popleft()
                freed = len(self._pending) == QUEUE_DEPTH - 1
            if freed:
                with contextlib.suppress(RuntimeError):  # the loop is closed: stopping
                    self.loop.call_soon_threadsafe(self._space.set)
            if self._finished:
                continue  # finished (or failed) early: drain the rest unread
            try:
                self._step(item)
            except Aborted:
                logger.info("client went away; smart request abandoned")
                self._finish_worker()
            except BaseException as e:
                logger.exception("smart request failed")
                self._finish_worker()
                with contextlib.suppress(Aborted):
                    self._emit(e)

    def _finish_worker(self) -> None:
        self._finished = True
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    def _start(self) -> bool:
        self._started = True
        if self.cancelled.is_set():
            self._finish_worker()
            return False
        try:
            if self.prepare is not None:
                self.prepare()
            self._transports = self.open_transports()
        except bzr_errors.PathNotChild as e:
            self._finish_worker()
            self._emit(Refused(str(e)))
            return False
        except (OSError, bzr_errors.BzrError) as e:
            self._finish_worker()
            self._emit(NotUsable(str(e)))
            return False
        if self.write_lock is not None:
            self._lock_file = open(self.write_lock, "a")  # noqa: SIM115 - held until the request ends
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        if self.observe is not None:
            self.observed_before = self._observe()
        self._out = Output(self._emit_counted)
        return True

    def _observe(self) -> str | None:
        assert self.observe is not None
        try:
            return self.observe()
        except OSError as e:  # the audit goes without it; the request does not fail for it
            logger.warning("could not read what the request changed: %s", e)
            return None

    def _accept(self, data: bytes) -> None:
        assert self._out is not None
        try:
            self._protocol.accept_bytes(data)
        except Exception as e:
            logger.warning("malformed smart request: %s: %s", type(e).__name__, e)
            self._broken = True
            self._out.replace_unsent(BAD_REQUEST)

    def _new_protocol(self, data: bytes) -> bytes:
        assert self._transports is not None and self._out is not None
        transport, jail_root = self._transports
        factory, unused = medium._get_protocol_factory_for_bytes(data)
        self._protocol = factory(transport, self._out.write, self.root_client_path, jail_root)
        return bytes(unused)

    def _step(self, item: bytes | None) -> None:
        if not self._started and not self._start():
            return
        if item is None:
            self._end()
            return
        if self._protocol is None:
            # Enough bytes to recognise the protocol version first.
            self._head += item
            if len(self._head) < len(V3_PREFIX) and V3_PREFIX.startswith(self._head):
                return
            item, self._head = self._new_protocol(self._head), b""
        if self._broken or self._protocol.next_read_size() == 0:
            return  # finished (or failed) early: the rest is read and dropped
        self._accept(item)
        self._no_space = insert.take_no_space() or self._no_space

    def _end(self) -> None:
        assert self._out is not None
        if self._protocol is None and self._head:
            self._accept(self._new_protocol(self._head))
        incomplete = self._protocol is None or (not self._broken and self._protocol.next_read_size() != 0)
        if incomplete:
            # What Breezy's HTTP server answers, and clients expect, for a
            # truncated request (or one in a protocol we do not speak).
            self._out.replace_unsent(INCOMPLETE)
        rest = self._out.take_rest()
        if self.observe is not None:
            self.observed_after = self._observe()
        self._finish_worker()
        if self._no_space is not None and not self._out.sent:
            self._emit(NoSpace(self._no_space))
            return
        # The last bytes and the end travel together: one hand-over, not two.
        self._emit_counted(Last(rest))

    # ---- event loop side

    async def _put(self, item: bytes | None) -> None:
        # The end of the body is queued whatever the depth: the pump always
        # gets it, and so always finishes the request and drops its lock.
        while item is not None and len(self._pending) >= QUEUE_DEPTH and not self.cancelled.is_set():
            self._space.clear()
            await self._space.wait()
        with self._guard:
            self._pending.append(item)
            start = not self._pumping
            self._pumping = True
        if start:
            # Started once this step of the loop is over: a small body's end,
            # read in the same step, goes to the same pump (one hand-over, not two).
            self.loop.call_soon(self._start_pump)

    def _start_pump(self) -> None:
        try:
            self.loop.run_in_executor(self.executor, self._pump)
        except RuntimeError:  # the pool is shut down: the service is stopping
            self.abandon()
            self.outbox._deliver(Aborted("service is stopping"))

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
                await self._put(chunk)
            return size
        finally:
            with contextlib.suppress(Aborted):
                await self._put(None)

    async def next_item(self) -> object:
        return await self.outbox.get()

    def abandon(self) -> None:
        self.cancelled.set()
        self.outbox.release_worker()
        self._space.set()
