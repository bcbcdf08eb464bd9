"""bzr:// on --bzr-port: the real brz client, read-only, and clients that stall or flood."""

from __future__ import annotations

import random
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastbencode import bencode

from janitor_bzr_store.smart_bytes import V3_PREFIX, MessageSplitter, NotProtocolThree, v3_complete
from janitor_dev.devstack import RedisServer, free_port

from .conftest import BzrStore, make_commits, running_store, store_database
from .test_http import v3_request

Brz = Callable[..., subprocess.CompletedProcess[str]]
IDLE = 3  # seconds, within a request and between requests, for this module's store
PER_ADDRESS = 4


def message(*args: bytes, chunks: tuple[bytes, ...] = ()) -> bytes:
    headers: bytes = bencode({b"Software version": b"3.3.0"})
    encoded: bytes = bencode(list(args))
    out = V3_PREFIX + struct.pack("!L", len(headers)) + headers + b"s" + struct.pack("!L", len(encoded)) + encoded
    for chunk in chunks:
        out += b"b" + struct.pack("!L", len(chunk)) + chunk
    return out + b"e"


def test_splitter_cuts_messages_wherever_the_bytes_break() -> None:
    messages = [message(b"hello"), message(b"get", b"/x"), message(b"put", chunks=(b"e" * 70000, b"", b"bb"))]
    stream = b"".join(messages)
    rng = random.Random(7)
    for _ in range(100):
        splitter, found, current, pos = MessageSplitter(), [], b"", 0
        while pos < len(stream):
            step = rng.randint(1, 4000)
            for piece, ends in splitter.feed(stream[pos : pos + step]):
                current += piece
                if ends:
                    found.append(current)
                    current = b""
            pos += step
        assert found == messages and splitter.between_messages
    assert all(v3_complete(m) for m in found)
    with pytest.raises(NotProtocolThree):
        MessageSplitter().feed(b"GET / HTTP/1.1\r\n\r\n" + b"x" * 30)


@pytest.fixture(scope="module")
def store(
    database_factory: Callable[[], str], redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[BzrStore, int]]:
    port = free_port()
    with running_store(
        store_database(database_factory),
        redis_server.url,
        tmp_path_factory.mktemp("bzr-stream"),
        JANITOR_BZR_PORT=str(port),
        JANITOR_BODY_IDLE_TIMEOUT=str(IDLE),
        JANITOR_STREAM_IDLE_TIMEOUT=str(IDLE),
        JANITOR_MAX_CONNECTIONS_PER_ADDRESS=str(PER_ADDRESS),
    ) as running:
        yield running, port


def bzr_url(port: int, path: str) -> str:
    return f"bzr://127.0.0.1:{port}/{path}"


def test_branch_over_bzr_matches_bzr_http(store: tuple[BzrStore, int], brz: Brz, tmp_path: Path) -> None:
    bzr_store, port = store
    work = tmp_path / "work"
    brz("init", "-q", str(work))
    make_commits(brz, work, 1, 5)
    brz("push", "-q", bzr_store.worker_url("foo/lintian-fixes/main"), cwd=work)

    brz("branch", "-q", bzr_url(port, "foo/lintian-fixes/main"), str(tmp_path / "over-bzr"))
    brz("branch", "-q", bzr_store.bzr_url("foo/lintian-fixes/main"), str(tmp_path / "over-http"))
    over_bzr = brz("log", "--show-ids", str(tmp_path / "over-bzr")).stdout
    assert "revno: 5" in over_bzr
    assert over_bzr.replace("over-bzr", "X") == brz("log", "--show-ids", str(tmp_path / "over-http")).stdout.replace(
        "over-http", "X"
    )
    assert brz("revno", bzr_url(port, "foo/lintian-fixes/main")).stdout.strip() == "5"
    missing = brz("branch", bzr_url(port, "foo/lintian-fixes/nothing"), str(tmp_path / "none"), check=False)
    assert missing.returncode != 0 and "Not a branch" in missing.stderr


def test_bzr_is_read_only(store: tuple[BzrStore, int], brz: Brz, tmp_path: Path) -> None:
    bzr_store, port = store
    work = tmp_path / "work"
    brz("init", "-q", str(work))
    make_commits(brz, work, 1, 1)
    pushed = brz("push", bzr_url(port, "foo/unchanged/main"), cwd=work, check=False)
    assert pushed.returncode != 0 and "readonly" in pushed.stderr.replace("read-only", "readonly"), pushed.stderr
    assert not (bzr_store.vcs_path / "foo" / "unchanged" / "main").exists()


def exchange(port: int, data: bytes, source: str = "127.0.0.1", wait: float = 10.0) -> bytes:
    """Send ``data``; everything answered until the server closes the connection or ``wait`` passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait, source_address=(source, 0)) as sock:
        sock.sendall(data)
        received = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:  # closed with our request unread
                return received
            if not chunk:
                return received
            received += chunk
    return received + b"<still open>"


def test_requests_one_after_another_on_one_connection(store: tuple[BzrStore, int]) -> None:
    _, port = store
    two = exchange(port, v3_request(b"hello") + v3_request(b"hello"), wait=IDLE + 5)
    assert two.count(V3_PREFIX) == 2 and b"ok" in two
    assert two.endswith(b"<still open>") is False  # closed by the server once idle for IDLE seconds


def test_garbage_gets_a_protocol_error_and_the_connection_closes(store: tuple[BzrStore, int]) -> None:
    _, port = store
    assert exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"x" * 100).startswith(b"error")
    assert exchange(port, v3_request(b"hello")).startswith(V3_PREFIX)  # and it still serves


def test_stalled_clients_are_dropped(store: tuple[BzrStore, int]) -> None:
    _, port = store
    started = time.monotonic()
    half = v3_request(b"BzrDir.open_2.1", b"/foo/")[:-5]
    assert exchange(port, half, wait=IDLE + 10) == b""  # cut mid-request: closed, nothing run
    assert time.monotonic() - started < IDLE + 5


def test_connections_per_address_are_capped(store: tuple[BzrStore, int]) -> None:
    _, port = store
    held = [socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.6", 0)) for _ in range(PER_ADDRESS)]
    try:
        time.sleep(0.5)
        assert exchange(port, v3_request(b"hello"), source="127.0.0.6") == b""  # refused: closed at once
        assert exchange(port, v3_request(b"hello"), source="127.0.0.7").startswith(V3_PREFIX)
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.5)
    assert exchange(port, v3_request(b"hello"), source="127.0.0.6").startswith(V3_PREFIX)
