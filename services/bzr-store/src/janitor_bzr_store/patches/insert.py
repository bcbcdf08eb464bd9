"""Bounded memory for pushes: Breezy's insert-stream handlers with a bounded queue (Breezy 3.3.23).

Breezy's server hands each chunk of an ``insert_stream`` body to an
inserter thread through an unbounded ``queue.Queue``. When the body arrives
faster than the repository takes it (always, for a big push on a fast
link), the chunks pile up in memory: hundreds of MB for a 300 MB push. With
a bounded queue the request thread waits instead, our inbox fills, the
event loop stops reading the body, and TCP slows the client down.

With a bounded queue, an inserter that died (a full disk: ENOSPC while
writing a pack) must not leave the request thread waiting forever to put
the next chunk, as Breezy's ``do_chunk``/``do_end`` would (its queue never
fills). Here the rest of the body is dropped once the inserter is gone,
and the failure is answered when the body ends. Breezy's ``do_end`` also
leaves the repository locked when the insert failed (a physical lock for
the verbs that lock it themselves): it is unlocked here. A disk that is
full, over quota or read-only is answered as ``TipChangeRejected`` with
the reason, which ``brz`` reports as a plain error, not an internal one
(for every verb through Breezy's error translation). Except for the insert
itself: Breezy's client does not translate the errors of ``insert_stream``
(any error there is an internal error, with a traceback), so a failed
insert is reported to the HTTP layer (``take_no_space``), which answers
507 Insufficient Storage instead, a transport error to ``brz``.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import threading
from typing import Any

from breezy.bzr.smart import repository as smart_repository
from breezy.bzr.smart import request as smart_request

logger = logging.getLogger(__name__)
# Set by a failed insert in the thread that ran it; read by that thread's request.
_no_space = threading.local()


def take_no_space() -> str | None:
    """Why the insert this thread just ended could not be stored (once), or None."""
    reason: str | None = getattr(_no_space, "reason", None)
    _no_space.reason = None
    return reason


# A chunk of a push's body is a whole group-compressed block (several MB
# for big files): one waiting while the inserter works on another is
# enough to keep it busy. With 4 the service peaked 20 MiB higher during a
# 300 MB push, no faster.
INSERT_QUEUE_CHUNKS = 1
# Errors that say the store cannot be written now, not that the request was wrong.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})

_VERBS = {
    b"Repository.insert_stream": smart_repository.SmartServerRepositoryInsertStream,
    b"Repository.insert_stream_1.19": smart_repository.SmartServerRepositoryInsertStream_1_19,
    b"Repository.insert_stream_locked": smart_repository.SmartServerRepositoryInsertStreamLocked,
}


def _bounded(base: type) -> type:
    class Bounded(base):  # type: ignore[misc]
        def do_insert_stream_request(self, repository: Any, resume_tokens: bytes) -> None:
            self.tokens = [t.decode("utf-8") for t in resume_tokens.split(b" ") if t]
            self.repository = repository
            self.queue: queue.Queue[object] = queue.Queue(maxsize=INSERT_QUEUE_CHUNKS)
            self.insert_thread = threading.Thread(target=self._inserter_thread, name="bzr-insert")
            self.insert_thread.start()

        def _put(self, item: object) -> None:
            while True:
                try:
                    self.queue.put(item, timeout=0.5)
                    return
                except queue.Full:
                    if not self.insert_thread.is_alive():
                        return  # the insert failed: nobody takes the rest

        def do_chunk(self, body_stream_chunk: bytes) -> None:
            self._put(body_stream_chunk)

        def do_end(self) -> Any:
            self._put(StopIteration)
            self.insert_thread.join()
            if not self.insert_ok:
                error = self.insert_exception[1]
                del self.insert_exception
                try:
                    self.repository.unlock()
                except Exception as e:  # it may not have got as far as locking
                    logger.debug("unlock after a failed insert: %s", e)
                if isinstance(error, OSError) and error.errno in NO_SPACE:
                    _no_space.reason = os.strerror(error.errno) if error.errno is not None else str(error)
                raise error
            return super().do_end()

    Bounded.__name__ = Bounded.__qualname__ = f"Bounded{base.__name__}"
    return Bounded


_breezy_translate_error = smart_request._translate_error


def _translate_error(err: BaseException) -> tuple[bytes, ...]:
    if isinstance(err, OSError) and err.errno in NO_SPACE:
        logger.error("smart request failed: the store cannot be written: %s", err)
        reason = os.strerror(err.errno) if err.errno is not None else str(err)
        return (
            b"TipChangeRejected",
            f"the server cannot store this now ({reason}); nothing was changed, try again later".encode(),
        )
    result: tuple[bytes, ...] = _breezy_translate_error(err)
    return result


def install() -> None:
    """Replace the registered handlers and the error translation (process-wide; idempotent)."""
    smart_request._translate_error = _translate_error
    registry = smart_request.request_handlers
    for verb, base in _VERBS.items():
        current = registry.get(verb)
        if getattr(current, "__name__", "").startswith("Bounded"):
            continue
        info = registry.get_info(verb)
        registry.remove(verb)
        registry.register(verb, _bounded(base), info=info)
