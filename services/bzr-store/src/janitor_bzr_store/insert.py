"""Bounded memory for pushes: Breezy's insert-stream handlers with a bounded queue.

Breezy's server hands each chunk of an ``insert_stream`` body to an
inserter thread through an unbounded ``queue.Queue``. When the body arrives
faster than the repository takes it (always, for a big push on a fast
link), the chunks pile up in memory: hundreds of MB for a 300 MB push. With
a bounded queue the request thread waits instead, our inbox fills, the
event loop stops reading the body, and TCP slows the client down.
"""

from __future__ import annotations

import queue
import threading

from breezy.bzr.smart import repository as smart_repository
from breezy.bzr.smart import request as smart_request

# A chunk of a push's body is a whole group-compressed block (several MB
# for big files): one waiting while the inserter works on another is
# enough to keep it busy. With 4 the service peaked 20 MiB higher during a
# 300 MB push, no faster.
INSERT_QUEUE_CHUNKS = 1

_VERBS = {
    b"Repository.insert_stream": smart_repository.SmartServerRepositoryInsertStream,
    b"Repository.insert_stream_1.19": smart_repository.SmartServerRepositoryInsertStream_1_19,
    b"Repository.insert_stream_locked": smart_repository.SmartServerRepositoryInsertStreamLocked,
}


def _bounded(base: type) -> type:
    class Bounded(base):  # type: ignore[misc]
        def do_insert_stream_request(self, repository: object, resume_tokens: bytes) -> None:
            self.tokens = [t.decode("utf-8") for t in resume_tokens.split(b" ") if t]
            self.repository = repository
            self.queue: queue.Queue[object] = queue.Queue(maxsize=INSERT_QUEUE_CHUNKS)
            self.insert_thread = threading.Thread(target=self._inserter_thread, name="bzr-insert")
            self.insert_thread.start()

    Bounded.__name__ = Bounded.__qualname__ = f"Bounded{base.__name__}"
    return Bounded


def install() -> None:
    """Replace the registered handlers (process-wide; idempotent)."""
    registry = smart_request.request_handlers
    for verb, base in _VERBS.items():
        current = registry.get(verb)
        if getattr(current, "__name__", "").startswith("Bounded"):
            continue
        info = registry.get_info(verb)
        registry.remove(verb)
        registry.register(verb, _bounded(base), info=info)
