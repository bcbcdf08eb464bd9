"""Private PostgreSQL and Redis servers for ``make run`` and the tests.

Both run as child processes on loopback with their data in a directory of
ours, so a developer's machine or CI never touches the system's own
instances. PostgreSQL refuses to run as root; when we are root the server
runs as the ``postgres`` user the Debian package creates. (A little over 300
lines: both servers' whole lives, as root and not, read best in one place.)
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import redis as redis_sync


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_cleanly_on_signals() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt, so ``finally`` blocks stop what was started.

    Python's default SIGTERM ends the process at once, leaving the
    PostgreSQL, Redis and service processes a run started behind; this also
    holds when the run was started with SIGINT ignored (in the background).
    """
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


class DevStackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pg_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise DevStackError("PostgreSQL server binaries not found (install postgresql-15: make system-deps)")


def _server_user() -> str | None:
    """The user to run PostgreSQL as: ourselves, or 'postgres' when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise DevStackError("running as root but there is no 'postgres' user to run PostgreSQL as") from None
    return "postgres"


# Where PostgreSQL keeps ``make run``'s cluster when we are root: the
# 'postgres' user it runs as owns it, whatever the checkout's permissions.
ROOT_PG_BASE = Path("/var/lib/janitor-dev")


def pg_data_dir(run_dir: Path) -> Path:
    """The data directory of ``run_dir``'s cluster.

    ``run_dir/postgres`` when we are not root. As root, PostgreSQL runs as
    'postgres', which cannot enter a checkout under /root (mode 700) or a
    ``mktemp -d`` directory; so its data lives under ROOT_PG_BASE, in a
    directory named for the run directory's path (the same one every run),
    and ``run_dir/postgres`` is a symlink to it. A cluster an earlier run
    made in ``run_dir/postgres`` itself is still used.
    """
    local = run_dir / "postgres"
    if _server_user() is None or (not local.is_symlink() and (local / "PG_VERSION").exists()):
        return local
    key = hashlib.sha256(str(run_dir.absolute()).encode()).hexdigest()[:16]
    return ROOT_PG_BASE / f"{run_dir.absolute().parent.name[:40]}-{key}" / "postgres"


def link_pg_data_dir(run_dir: Path, datadir: Path) -> None:
    """``run_dir/postgres`` points at ``datadir`` when that lives elsewhere, so it is easy to find."""
    local = run_dir / "postgres"
    if datadir == local:
        return
    if local.is_symlink() and Path(os.readlink(local)) == datadir:
        return
    if local.is_symlink():
        local.unlink()
    if not local.exists():
        local.symlink_to(datadir, target_is_directory=True)


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    """``sig``, then SIGKILL if ``proc`` has not exited within ``timeout`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Postgres:
    """A PostgreSQL cluster in ``datadir`` listening on 127.0.0.1:``port``."""

    def __init__(self, datadir: Path, port: int, *, user: str = "janitor", fast: bool = False) -> None:
        self.datadir = datadir
        self.port = port
        self.user = user
        self.fast = fast  # durability off: for throwaway test clusters only
        self.proc: subprocess.Popen[bytes] | None = None
        self.logfile = datadir.with_name(datadir.name + ".log")
        self.run_as = _server_user()

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def _prepare_dir(self, path: Path) -> None:
        if self.run_as and path.is_relative_to(ROOT_PG_BASE):
            ROOT_PG_BASE.mkdir(mode=0o755, exist_ok=True)
            path.parent.mkdir(mode=0o755, exist_ok=True)
        path.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            os.chown(path, pw.pw_uid, pw.pw_gid)
            probe = subprocess.run(["test", "-w", str(path)], user=self.run_as, check=False)
            if probe.returncode != 0:
                raise DevStackError(
                    f"user {self.run_as} cannot write {path}: a parent directory is not traversable by it"
                    " (choose a data directory it can reach)"
                )

    def init(self) -> None:
        if (self.datadir / "PG_VERSION").exists():
            return
        self._prepare_dir(self.datadir)
        self.logfile.touch()
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            os.chown(self.logfile, pw.pw_uid, pw.pw_gid)
        subprocess.run(
            [
                str(_pg_bindir() / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            user=self.run_as,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def start(self, timeout: float = 30.0) -> None:
        if port_in_use(self.port):
            raise DevStackError(f"port {self.port} is in use: cannot start PostgreSQL there")
        stale = self.datadir / "postmaster.pid"
        if stale.exists():
            stale.unlink()  # left by a killed server; the port check above shows none is running
        options = [
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.datadir}",
            "-c",
            "max_connections=200",
        ]
        if self.fast:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log = open(self.logfile, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            [str(_pg_bindir() / "postgres"), "-D", str(self.datadir), "-p", str(self.port), *options],
            user=self.run_as,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise DevStackError(f"PostgreSQL exited at start-up; see {self.logfile}")
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise DevStackError(f"PostgreSQL did not come up in {timeout}s; see {self.logfile}") from None
                time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        stop_process(self.proc, signal.SIGINT, timeout)  # "fast" shutdown: roll back, close, exit

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            conn.execute(sql.encode())

    def database_exists(self, name: str) -> bool:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None

    def create_database(self, name: str, template: str | None = None) -> str:
        ident = psycopg.sql.Identifier(name)
        with psycopg.connect(self.url(), autocommit=True) as conn:
            if template:
                conn.execute(
                    psycopg.sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(ident, psycopg.sql.Identifier(template))
                )
            else:
                conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(ident))
        return self.url(name)


class RedisServer:
    """A Redis server on 127.0.0.1:``port`` with its files in ``workdir``; no persistence."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.logfile = workdir / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise DevStackError("redis-server not found (install redis-server: make system-deps)")
        if port_in_use(self.port):
            raise DevStackError(f"port {self.port} is in use: cannot start Redis there")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(self.logfile),
                "--daemonize",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis_sync.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.proc.poll() is not None:
                    raise DevStackError(f"Redis exited at start-up; see {self.logfile}")
                try:
                    client.ping()
                    return
                except redis_sync.ConnectionError:
                    if time.monotonic() > deadline:
                        raise DevStackError(f"Redis did not come up in {timeout}s") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        stop_process(self.proc, signal.SIGTERM, timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
