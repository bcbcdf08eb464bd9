"""bzr+ssh on --ssh-port: the real brz client through the system ssh client with a key, and what is refused."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh
import psycopg
import pytest

from janitor_bzr_store.access import Grants
from janitor_bzr_store.smart_bytes import V3_PREFIX
from janitor_bzr_store.ssh import command_rights
from janitor_bzr_store.store import StorePath
from janitor_bzr_store.stream import target_of
from janitor_dev.bzrhistory import ssh_client_env
from janitor_dev.devstack import RedisServer, free_port
from janitor_dev.testing import console_script, service_env, wait_until

from .conftest import PASSWORD, WORKER, BzrStore, brz_runner, make_commits, running_store, store_database
from .test_http import v3_request

Brz = Callable[..., subprocess.CompletedProcess[str]]
SERVE = "bzr serve --inet --directory=/ --allow-writes"


def test_only_breezys_serve_command_is_interpreted() -> None:
    assert command_rights("bzr serve --inet --directory=/ --allow-writes") is True
    assert command_rights("/usr/bin/brz serve --inet --directory=/") is False
    for refused in (None, "", "ls", "bzr serve --inet --directory=/srv", "bzr serve --inet --directory=/ ; id", "'"):
        assert command_rights(refused) is None, refused


def test_a_write_names_its_codebase_and_writes_nowhere_else(tmp_path: Path) -> None:
    assert target_of([b"Bazaar-NG meta directory, format 1\n", b"/foo/lintian-fixes/main/"]) == StorePath(
        "foo", "lintian-fixes", "main"
    )
    assert target_of([b"/foo/.bzr/repository/upload/x.pack"]) == StorePath("foo")
    assert target_of([b"/../etc/", b"token"]) is None
    root = str(tmp_path)
    anywhere = Grants().write_policy(root, "foo")
    assert anywhere(f"{root}/foo/unchanged/main/.bzr/branch/x") and not anywhere(f"{root}/bar/.bzr/x")
    limited = Grants((("a*", "lintian-*"),)).write_policy(root, "alpha")
    assert limited(f"{root}/alpha/.bzr/repository/packs/x") and limited(f"{root}/alpha/lintian-fixes/main/x")
    assert not limited(f"{root}/alpha/unchanged/main/x") and not limited(f"{root}/alpha/x")


class SshStore:
    def __init__(self, store: BzrStore, port: int, host_key: Path) -> None:
        self.store = store
        self.port = port
        self.host_key = host_key

    def url(self, path: str, user: str = WORKER) -> str:
        return f"bzr+ssh://{user}@127.0.0.1:{self.port}/{path}"


@pytest.fixture(scope="module")
def ssh_store(
    database_factory: Callable[[], str], redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SshStore]:
    with running_ssh_store(database_factory, redis_server, tmp_path_factory.mktemp("bzr-ssh")) as store:
        yield store


@contextlib.contextmanager
def running_ssh_store(
    database_factory: Callable[[], str], redis_server: RedisServer, base: Path, **env: str
) -> Iterator[SshStore]:
    """A bzr-store with --ssh-port on, its host key made at start under ``base``, with ``JANITOR_*`` ``env``."""
    port, host_key = free_port(), base / "secrets" / "ssh_host_key"
    with running_store(
        store_database(database_factory),
        redis_server.url,
        base,
        JANITOR_SSH_PORT=str(port),
        JANITOR_SSH_HOST_KEY=str(host_key),
        **env,
    ) as store:
        yield SshStore(store, port, host_key)


def make_key(directory: Path, name: str) -> Path:
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


def janitor_db(store: BzrStore, *args: str) -> None:
    done = subprocess.run(
        [console_script("janitor-db"), *args],
        env=service_env(JANITOR_DATABASE_URL=store.database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def ssh_brz(ssh_store: SshStore, brz: Brz, tmp_path: Path) -> Callable[[Path], Brz]:
    """brz with BRZ_SSH=openssh and an ``ssh`` that uses ``key`` and knows only the store's host key."""

    def with_key(key: Path) -> Brz:
        env = ssh_client_env(tmp_path / f"ssh-{key.name}", key, ssh_store.host_key, ssh_store.port)
        return brz_runner(tmp_path, **env)

    return with_key


def test_push_and_branch_with_a_key(
    ssh_store: SshStore, brz: Brz, ssh_brz: Callable[[Path], Brz], tmp_path: Path
) -> None:
    key = make_key(tmp_path, "worker-key")
    janitor_db(ssh_store.store, "add-worker-key", WORKER, f"{key}.pub")
    over_ssh = ssh_brz(key)
    work = tmp_path / "work"
    brz("init", "-q", str(work))
    make_commits(brz, work, 1, 4)
    over_ssh("push", "-q", ssh_store.url("foo/lintian-fixes/main"), cwd=work)
    # What went in over SSH comes out over HTTP, and back over SSH.
    brz("branch", "-q", ssh_store.store.bzr_url("foo/lintian-fixes/main"), str(tmp_path / "over-http"))
    over_ssh("branch", "-q", ssh_store.url("foo/lintian-fixes/main"), str(tmp_path / "over-ssh"))
    expected = brz("log", "--show-ids", str(work)).stdout.replace(str(work), "X")
    for copy in ("over-http", "over-ssh"):
        assert brz("log", "--show-ids", str(tmp_path / copy)).stdout.replace(str(tmp_path / copy), "X") == expected

    def ssh_rows() -> list[tuple[str, str | None, str | None]]:
        with psycopg.connect(ssh_store.store.database_url) as conn:
            return conn.execute(
                "SELECT worker, tip_before, tip_after FROM bzr_write_audit"
                " WHERE interface = 'ssh' AND tip_after IS NOT NULL"
            ).fetchall()

    wait_until(lambda: bool(ssh_rows()), 10, "the push's audit rows")  # written in batches, after the responses
    assert all(r[0] == WORKER for r in ssh_rows())


def test_a_wrong_key_writes_nothing(
    ssh_store: SshStore, brz: Brz, ssh_brz: Callable[[Path], Brz], tmp_path: Path
) -> None:
    stranger = make_key(tmp_path, "stranger-key")
    work = tmp_path / "work"
    brz("init", "-q", str(work))
    make_commits(brz, work, 1, 1)
    refused = ssh_brz(stranger)("push", ssh_store.url("foo/unchanged/main"), cwd=work, check=False)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr, refused.stderr
    assert not (ssh_store.store.vcs_path / "foo" / "unchanged" / "main").exists()


def run_over_ssh(
    ssh_store: SshStore, user: str, password: str, command: str, data: bytes
) -> asyncssh.SSHCompletedProcess:
    async def go() -> asyncssh.SSHCompletedProcess:
        async with asyncssh.connect(
            "127.0.0.1", ssh_store.port, username=user, password=password, known_hosts=None, client_keys=None
        ) as conn:
            return await conn.run(command, input=data, encoding=None, timeout=30)

    return asyncio.run(go())


def stdout(done: asyncssh.SSHCompletedProcess) -> bytes:
    assert isinstance(done.stdout, bytes)
    return done.stdout


def stderr(done: asyncssh.SSHCompletedProcess) -> bytes:
    assert isinstance(done.stderr, bytes)
    return done.stderr


def test_password_login_and_only_the_serve_command(ssh_store: SshStore) -> None:
    hello = run_over_ssh(ssh_store, WORKER, PASSWORD, SERVE, v3_request(b"hello"))
    assert hello.exit_status == 0 and stdout(hello).startswith(V3_PREFIX)
    for command in ("ls /", "bzr serve --inet --directory=/srv --allow-writes", "sh -c id"):
        refused = run_over_ssh(ssh_store, WORKER, PASSWORD, command, b"")
        assert refused.exit_status == 1 and b"only 'bzr serve" in stderr(refused), command
    with pytest.raises(asyncssh.PermissionDenied):
        run_over_ssh(ssh_store, WORKER, "wrong", SERVE, b"")
    with pytest.raises(asyncssh.PermissionDenied):
        run_over_ssh(ssh_store, "anonymous", "", SERVE, b"")  # anonymous logins are off by default


def test_grants_hold_over_ssh(ssh_store: SshStore) -> None:
    with psycopg.connect(ssh_store.store.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO worker (name, password) VALUES ('limited-ssh', crypt('pw', gen_salt('bf')))")
    janitor_db(ssh_store.store, "grant", "limited-ssh", "--codebase", "a*")
    time.sleep(0.5)
    mkdir = v3_request(b"mkdir", b"/foo/lintian-fixes/planted", b"")
    refused = run_over_ssh(ssh_store, "limited-ssh", "pw", SERVE, mkdir)
    assert b"PermissionDenied" in stdout(refused) and b"may not write to foo" in stdout(refused)
    assert not (ssh_store.store.vcs_path / "foo" / "lintian-fixes" / "planted").exists()
    # Read-only when writes are not asked for: the same request runs on a read-only view.
    reads_only = run_over_ssh(ssh_store, WORKER, PASSWORD, "bzr serve --inet --directory=/", mkdir)
    assert b"ReadOnlyError" in stdout(reads_only)
    assert not (ssh_store.store.vcs_path / "foo" / "lintian-fixes" / "planted").exists()


def test_anonymous_logins_when_enabled_are_read_only(
    database_factory: Callable[[], str], redis_server: RedisServer, tmp_path: Path
) -> None:
    with running_ssh_store(database_factory, redis_server, tmp_path, JANITOR_SSH_ANONYMOUS="true") as anonymous:
        store = anonymous.store
        hello = run_over_ssh(anonymous, "anonymous", "", SERVE, v3_request(b"hello"))
        assert stdout(hello).startswith(V3_PREFIX)
        mkdir = run_over_ssh(anonymous, "anonymous", "", SERVE, v3_request(b"mkdir", b"/foo/planted", b""))
        assert b"ReadOnlyError" in stdout(mkdir)  # --allow-writes asked for, and still read-only
        assert not (store.vcs_path / "foo" / "planted").exists()


def test_a_login_that_runs_nothing_is_closed(
    database_factory: Callable[[], str], redis_server: RedisServer, tmp_path: Path
) -> None:
    with running_ssh_store(database_factory, redis_server, tmp_path, JANITOR_STREAM_IDLE_TIMEOUT="2") as ssh_store:
        port = ssh_store.port

        async def idle_login() -> float:
            async with asyncssh.connect(
                "127.0.0.1", port, username=WORKER, password=PASSWORD, known_hosts=None, client_keys=None
            ) as conn:
                started = time.monotonic()
                await asyncio.wait_for(conn.wait_closed(), 15)
                return time.monotonic() - started

        assert 1.5 < asyncio.run(idle_login()) < 10  # closed by the server, about 2 s after the login
