"""Serve one or more ASGI apps from one process with uvicorn.

bzr-store listens on two ports (admin and public) from one process; uvicorn
handles signals per server, so we take signals over: the first SIGINT or
SIGTERM asks every server to finish (in-flight requests get a few seconds),
a second one forces the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from .slowloris import HeaderTimeoutProtocol

logger = logging.getLogger(__name__)


@dataclass
class Listener:
    app: ASGIApp
    host: str
    port: int
    name: str = "http"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # signals are handled once for all servers in serve()


async def serve_async(listeners: Sequence[Listener], *, graceful_timeout: float = 5.0) -> None:
    servers = []
    for listener in listeners:
        config = uvicorn.Config(
            listener.app,
            host=listener.host,
            port=listener.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=int(graceful_timeout),
            server_header=False,
            http=HeaderTimeoutProtocol,
        )
        servers.append(_Server(config))

    loop = asyncio.get_running_loop()
    signalled = 0

    def on_signal(signum: int) -> None:
        nonlocal signalled
        signalled += 1
        name = signal.Signals(signum).name
        if signalled == 1:
            logger.info("%s received: shutting down", name)
            for s in servers:
                s.should_exit = True
        else:
            logger.warning("%s received again: forcing exit", name)
            for s in servers:
                s.force_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    for listener in listeners:
        logger.info("%s interface on http://%s:%d/", listener.name, listener.host, listener.port)

    async def freeze_when_started() -> None:
        while not all(s.started for s in servers):
            if any(s.should_exit for s in servers):
                return
            await asyncio.sleep(0.05)
        freeze_startup_heap()

    freezer = asyncio.ensure_future(freeze_when_started())
    try:
        await asyncio.gather(*(s.serve() for s in servers))
    finally:
        freezer.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def freeze_startup_heap() -> int:
    """Keep what start-up allocated out of the garbage collector's full collections.

    A service's start-up leaves ~140k long-lived objects (FastAPI, SQLAlchemy,
    Breezy's registries). Every full collection walks all of them; a Breezy
    insert of 50 commits allocates enough to trigger one, and it took 92 ms
    of the request's 155 ms. Frozen objects are never collected (they live
    as long as the process anyway), and full collections only walk what
    came after. Returns how many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.debug("froze %d start-up objects out of garbage collection", frozen)
    return frozen


def serve(listeners: Sequence[Listener], *, graceful_timeout: float = 5.0) -> int:
    try:
        asyncio.run(serve_async(listeners, graceful_timeout=graceful_timeout))
    except SystemExit as e:  # uvicorn exits this way when it cannot bind or start
        return int(e.code or 1)
    return 0
