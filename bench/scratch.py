"""A throwaway bzr-store for the small benchmarks: its own PostgreSQL, Redis and store, gone afterwards.

Shared by ``auth_timing.py`` and ``smart_garbage.py``, which need one
bzr-store process and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from janitor_common.db import migrate
from janitor_dev.devstack import Postgres, RedisServer, free_port
from janitor_dev.testing import ServiceProcess, console_script, service_env


@dataclass(frozen=True)
class ScratchStore:
    admin_url: str
    public_url: str
    process: ServiceProcess
    vcs_path: Path
    base: Path


@contextlib.contextmanager
def scratch_bzr_store(
    prefix: str, setup_sql: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> Iterator[ScratchStore]:
    """bzr-store on free loopback ports over a migrated database where ``setup_sql`` has run, ``env`` added."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)  # PostgreSQL runs as 'postgres' when we are root
    pg = Postgres(base / "pg", free_port(), fast=True)
    redis = RedisServer(base / "redis", free_port())
    service = None
    try:
        pg.init()
        pg.start()
        redis.start()
        url = pg.create_database("bench")
        migrate.upgrade(url)
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in setup_sql:
                conn.execute(statement.encode())
        (base / "vcs").mkdir()
        admin, public = free_port(), free_port()
        env = service_env(
            JANITOR_DATABASE_URL=url,
            JANITOR_REDIS_URL=redis.url,
            JANITOR_CAMPAIGNS=json.dumps([{"name": "lintian-fixes"}]),
            JANITOR_LOG_LEVEL="WARNING",
            **(env or {}),
        )
        service = ServiceProcess(
            [
                console_script("janitor-bzr-store"),
                *("--vcs-path", str(base / "vcs"), "--port", str(admin), "--public-port", str(public)),
            ],
            env,
            f"http://127.0.0.1:{admin}/health",
            base / "bzr-store.log",
        )
        service.start()
        yield ScratchStore(f"http://127.0.0.1:{admin}", f"http://127.0.0.1:{public}", service, base / "vcs", base)
    finally:
        if service is not None:
            service.stop()
        redis.stop()
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
