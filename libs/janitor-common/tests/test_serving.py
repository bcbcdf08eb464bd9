"""serve_async: several apps in one process, one signal handling, a frozen start-up heap."""

from __future__ import annotations

import asyncio
import gc
import os
import signal

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from janitor_common.serving import Listener, serve_async
from janitor_dev.devstack import free_port


def make_app(text: str) -> Starlette:
    async def hello(request: object) -> PlainTextResponse:
        return PlainTextResponse(text)

    return Starlette(routes=[Route("/", hello)])


def test_serves_all_listeners_freezes_start_up_heap_and_stops_on_sigterm() -> None:
    ports = [free_port(), free_port()]
    gc.unfreeze()
    assert gc.get_freeze_count() == 0

    async def scenario() -> list[str]:
        task = asyncio.ensure_future(
            serve_async([Listener(make_app(f"app {i}"), "127.0.0.1", p, f"l{i}") for i, p in enumerate(ports)])
        )
        texts: list[str] = []
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    texts = [(await client.get(f"http://127.0.0.1:{p}/")).text for p in ports]
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        for _ in range(100):  # the freeze follows the start of every server
            if gc.get_freeze_count() > 0:
                break
            await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, 10)
        return texts

    try:
        assert asyncio.run(scenario()) == ["app 0", "app 1"]
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
