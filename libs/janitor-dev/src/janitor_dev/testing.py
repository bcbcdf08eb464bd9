"""Pytest fixtures for every test suite: real PostgreSQL and Redis.

One PostgreSQL cluster and one Redis per test session, on free loopback
ports in temporary directories. The schema is migrated once into a template
database; each test gets its own copy (``CREATE DATABASE ... TEMPLATE``, a
file copy, ~50 ms), so tests never see each other's rows.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis as redis_sync
from starlette.types import ASGIApp, Receive, Scope, Send

from janitor_common.db import migrate

from .devstack import Postgres, RedisServer, free_port

TEMPLATE_DB = "janitor_template"
_counter = itertools.count()


def world_traversable_tmpdir(prefix: str) -> Path:
    # PostgreSQL runs as 'postgres' when we are root: it must reach its data dir.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Postgres]:
    base = world_traversable_tmpdir("janitor-test-pg-")
    server = Postgres(base / "data", free_port(), fast=True)
    server.init()
    server.start()
    try:
        server.create_database(TEMPLATE_DB)
        migrate.upgrade(server.url(TEMPLATE_DB))
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def _new_database(server: Postgres, template: str | None) -> Iterator[str]:
    name = f"test_{os.getpid()}_{next(_counter)}"
    url = server.create_database(name, template=template)
    try:
        yield url
    finally:
        server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_factory(pg_server: Postgres) -> Iterator[Callable[[], str]]:
    """Makes migrated databases for fixtures of wider scope than one test."""
    made: list[str] = []

    def make() -> str:
        name = f"test_{os.getpid()}_{next(_counter)}"
        made.append(name)
        return pg_server.create_database(name, template=TEMPLATE_DB)

    yield make
    for name in made:
        pg_server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(pg_server: Postgres) -> Iterator[str]:
    """A migrated database of this test's own."""
    yield from _new_database(pg_server, TEMPLATE_DB)


@pytest.fixture
def empty_database_url(pg_server: Postgres) -> Iterator[str]:
    """A database with no schema at all (for migration tests)."""
    yield from _new_database(pg_server, None)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    base = Path(tempfile.mkdtemp(prefix="janitor-test-redis-"))
    server = RedisServer(base, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    client = redis_sync.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture
def janitor_env(monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    """JANITOR_* variables pointing at this test's database, Redis and artifact dir."""
    for key in list(os.environ):
        if key.startswith("JANITOR_"):
            monkeypatch.delenv(key)
    env = {
        "JANITOR_DATABASE_URL": database_url,
        "JANITOR_REDIS_URL": redis_url,
        "JANITOR_ARTIFACT_LOCATION": str(tmp_path / "artifacts"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible HTTP endpoint: moto's standalone server in a subprocess."""
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/moto-api/", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket on the moto server, with boto3's variables pointing at it; returns its name."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"artifacts-{os.getpid()}-{time.monotonic_ns()}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return bucket


@contextlib.asynccontextmanager
async def asgi_client(app: ASGIApp, base_url: str = "http://test") -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for an app in this process, with its lifespan run around it.

    httpx's ASGI transport does not run the lifespan, so we run it here and
    hand its state to each request as a server would.
    """
    lifespan = app.router.lifespan_context  # type: ignore[attr-defined]
    async with lifespan(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


class ServiceProcess:
    """A service started through its real console script, for tests that need a process."""

    def __init__(self, argv: list[str], env: dict[str, str], health_url: str, log_path: Path) -> None:
        self.argv = argv
        self.env = env
        self.health_url = health_url
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.health_url, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.argv[0]} did not answer {self.health_url} in {timeout}s:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def console_script(name: str) -> str:
    """The path of one of our console scripts in the running interpreter's environment."""
    return str(Path(sys.executable).parent / name)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, *, every: float = 0.02) -> None:
    """Return once ``predicate()`` holds; AssertionError naming ``what`` after ``timeout`` seconds.

    For what a service does in the background after answering (an audit
    row, a ledger state): polled, never a fixed sleep.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(every)


def service_env(**values: str) -> dict[str, str]:
    """The current environment without JANITOR_* variables, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JANITOR_")}
    env.update(values)
    return env
