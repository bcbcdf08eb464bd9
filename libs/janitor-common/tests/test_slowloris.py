"""Connections that never finish their headers are closed; others are served."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from janitor_common.slowloris import HeaderTimeoutProtocol
from janitor_dev.devstack import free_port


class QuickTimeout(HeaderTimeoutProtocol):
    header_timeout = 1.0


async def hello(request: object) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def test_slow_headers_are_cut_off_and_complete_requests_served() -> None:
    port = free_port()
    app = Starlette(routes=[Route("/", hello)])
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_config=None, http=QuickTimeout, lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()

        def slow_clients(count: int) -> list[socket.socket]:
            socks = []
            for _ in range(count):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and never the rest
                socks.append(s)
            return socks

        socks = await loop.run_in_executor(None, slow_clients, 100)
        # A kept-alive connection: one whole request, then a trickle.
        kept = socket.create_connection(("127.0.0.1", port))
        kept.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b"hello"):
            answer += await loop.run_in_executor(None, kept.recv, 4096)
        kept.sendall(b"GET / HT")
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/")).text == "hello"
        await asyncio.sleep(1.8)

        def closed(s: socket.socket) -> bool:
            s.settimeout(2)
            with contextlib.suppress(ConnectionResetError):
                return s.recv(4096) == b""
            return True

        results = await loop.run_in_executor(None, lambda: [closed(s) for s in [*socks, kept]])
        assert all(results), f"{results.count(False)} slow connections still open"
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/")).text == "hello"
        for s in [*socks, kept]:
            s.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
