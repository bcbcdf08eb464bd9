"""Stalled and slow clients: they cost a socket each, never the public port."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from janitor_dev.devstack import RedisServer

from .conftest import BzrStore, make_commits, running_store, store_database
from .test_brz import Brz
from .test_http import v3_request


def stall(store: BzrStore, path: str = "foo/lintian-fixes/main") -> socket.socket:
    """A smart request whose verb is sent whole, then nothing more of its body."""
    body = v3_request(b"BzrDir.open_2.1", b"")
    host, port = store.public_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(
        f"POST /bzr/{path}/.bzr/smart HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Length: {len(body) + 1000}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
        + body[:-1]  # all but the end marker, and 1000 bytes promised
    )
    return sock


def read_status(sock: socket.socket, timeout: float) -> str:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0].decode()


@pytest.fixture(scope="module")
def store(
    database_factory: Callable[[], str], redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BzrStore]:
    # The default idle timeout (60 s): nothing here may pass by waiting it out.
    with running_store(
        store_database(database_factory), redis_server.url, tmp_path_factory.mktemp("stalled")
    ) as running:
        yield running


def test_200_stalled_clients_leave_the_public_port_answering(store: BzrStore, brz: Brz, tmp_path: Path) -> None:
    tree = tmp_path / "work"
    brz("init", "-q", str(tree))
    make_commits(brz, tree, 0, 3)
    brz("push", "-q", "-d", str(tree), store.worker_url("foo/lintian-fixes/main"))
    with ExitStack() as stack:
        for _ in range(200):
            stack.callback(stack.enter_context(stall(store)).close)
        time.sleep(0.5)  # let the service take them all in
        started = time.monotonic()
        listing = httpx.get(f"{store.public_url}/bzr/", timeout=5, headers={"Accept": "text/plain"})
        assert listing.status_code == 200 and "foo" in listing.text
        hello = httpx.post(f"{store.public_url}/bzr/foo/.bzr/smart", content=v3_request(b"hello"), timeout=5)
        assert hello.status_code == 200 and b"ok" in hello.content
        took = time.monotonic() - started
        print(f"with 200 stalled clients: GET /bzr/ and a small smart request answered in {took * 1000:.0f} ms")
        assert took < 1.0
        brz("branch", "-q", store.bzr_url("foo/lintian-fixes/main"), str(tmp_path / "copy"))
        assert (tmp_path / "copy" / "file2.txt").exists()


@pytest.fixture(scope="module")
def strict_store(
    database_factory: Callable[[], str], redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BzrStore]:
    with running_store(
        store_database(database_factory),
        redis_server.url,
        tmp_path_factory.mktemp("strict"),
        JANITOR_BODY_IDLE_TIMEOUT="2",
        JANITOR_MAX_SMART_REQUESTS="8",
    ) as running:
        yield running


def test_a_stalled_body_is_dropped_after_the_idle_timeout(strict_store: BzrStore) -> None:
    with stall(strict_store, "foo") as sock:
        started = time.monotonic()
        assert read_status(sock, 10) == "HTTP/1.1 408 Request Timeout"
        assert 1.5 < time.monotonic() - started < 6
    metrics = httpx.get(f"{strict_store.admin_url}/metrics").text
    assert 'outcome="stalled"' in metrics


def test_requests_beyond_the_limit_get_503_with_retry_after(strict_store: BzrStore) -> None:
    with ExitStack() as stack:
        for _ in range(8):
            stack.callback(stack.enter_context(stall(strict_store, "foo")).close)
        time.sleep(0.5)
        busy = httpx.post(f"{strict_store.public_url}/bzr/foo/.bzr/smart", content=v3_request(b"hello"), timeout=5)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
        assert "too many smart requests" in busy.text
    # Once they are gone (closed by the client), requests are taken again.
    deadline = time.monotonic() + 10
    while True:
        hello = httpx.post(f"{strict_store.public_url}/bzr/foo/.bzr/smart", content=v3_request(b"hello"), timeout=5)
        if hello.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert hello.status_code == 200
