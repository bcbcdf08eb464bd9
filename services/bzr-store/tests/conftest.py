"""A real bzr-store process on loopback, a real database, and the real ``brz``."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from janitor_dev.devstack import RedisServer, free_port
from janitor_dev.testing import ServiceProcess, console_script, service_env

WORKER = "worker1"
PASSWORD = "correct horse"
CAMPAIGNS = ["lintian-fixes", "unchanged"]
BRZ = console_script("brz")


@dataclass
class BzrStore:
    vcs_path: Path
    admin_url: str
    public_url: str
    database_url: str
    process: ServiceProcess

    def bzr_url(self, path: str, *, user: str | None = None, password: str | None = None) -> str:
        host = self.public_url.removeprefix("http://")
        creds = f"{user}:{password}@" if user is not None else ""
        return f"bzr+http://{creds}{host}/bzr/{path}"

    def worker_url(self, path: str) -> str:
        return self.bzr_url(path, user=WORKER, password=PASSWORD.replace(" ", "%20"))


def add_codebase(database_url: str, name: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO codebase (name) VALUES (%s) ON CONFLICT DO NOTHING", (name,))


@contextlib.contextmanager
def running_store(database_url: str, redis_url: str, base: Path, **env_overrides: str) -> Iterator[BzrStore]:
    """A bzr-store process on free loopback ports, with ``JANITOR_*`` overrides."""
    vcs = base / "vcs"
    vcs.mkdir(exist_ok=True)  # a test may have mounted a file system there
    admin, public = free_port(), free_port()
    env = service_env(
        JANITOR_DATABASE_URL=database_url,
        JANITOR_REDIS_URL=redis_url,
        JANITOR_CAMPAIGNS=json.dumps([{"name": c} for c in CAMPAIGNS]),
        **env_overrides,
    )
    proc = ServiceProcess(
        [
            console_script("janitor-bzr-store"),
            "--vcs-path",
            str(vcs),
            "--port",
            str(admin),
            "--public-port",
            str(public),
            "--client-max-size",
            str(50 << 20),
        ],
        env,
        f"http://127.0.0.1:{admin}/health",
        base / "bzr-store.log",
    )
    proc.start()
    try:
        yield BzrStore(vcs, f"http://127.0.0.1:{admin}", f"http://127.0.0.1:{public}", database_url, proc)
    finally:
        proc.stop()


def store_database(database_factory: Callable[[], str]) -> str:
    database_url = database_factory()
    add_codebase(database_url, "foo")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO worker (name, password) VALUES (%s, crypt(%s, gen_salt('bf')))", (WORKER, PASSWORD))
    return database_url


@pytest.fixture(scope="module")
def bzr_store(
    database_factory: Callable[[], str], redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BzrStore]:
    with running_store(
        store_database(database_factory), redis_server.url, tmp_path_factory.mktemp("bzr-store")
    ) as store:
        yield store


def brz_runner(tmp_path: Path, **extra_env: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs the real brz client with a private home under ``tmp_path`` and no terminal to prompt on."""
    home = tmp_path / "brz-home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRZ_", "BZR_"))}
    env.update(BRZ_HOME=str(home), BRZ_EMAIL="Test Worker <worker@example.com>", BRZ_PLUGIN_PATH="-site:-user")
    env.update(extra_env)

    def run(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [BRZ, *args],
            cwd=cwd or tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"brz {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    return run


@pytest.fixture
def brz(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    return brz_runner(tmp_path)


def make_commits(brz: Callable[..., subprocess.CompletedProcess[str]], tree: Path, start: int, count: int) -> None:
    for i in range(start, start + count):
        (tree / f"file{i}.txt").write_text(f"content {i}\n" * (i + 1))
        brz("add", "-q", f"file{i}.txt", cwd=tree)
        brz("commit", "-q", "-m", f"commit number {i}", cwd=tree)
