"""The three services as separate processes over their own PostgreSQL and Redis, for whole-suite tests.

Started the way an operator would: ``janitor-db upgrade``, then each
service's console script reading one ``janitor.conf``, auto-upload signing
with a real key and uploading with dput to a local directory.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from .demo import JANITOR_CONF, ensure_signing_key
from .devstack import Postgres, RedisServer, free_port
from .testing import ServiceProcess, console_script, service_env, world_traversable_tmpdir

SERVICES = ("bzr-store", "differ", "auto-upload")


@dataclass
class Suite:
    base: Path
    pg: Postgres
    redis: RedisServer
    database_url: str
    artifacts: Path
    cache: Path
    incoming: Path
    vcs: Path
    env: dict[str, str]  # what the services were started with (JANITOR_CONFIG, GNUPGHOME)
    urls: dict[str, str]  # service name -> base URL (bzr-store: its admin interface)
    public_url: str  # bzr-store's public interface
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def ready(self) -> dict[str, int]:
        out = {}
        for name, url in self.urls.items():
            try:
                out[name] = httpx.get(f"{url}/ready", timeout=5).status_code
            except httpx.TransportError:
                out[name] = -1
        return out

    def publish(self, message: Mapping[str, Any]) -> int:
        """Publish a ``result`` message; how many services received it."""
        client = redis.Redis.from_url(self.redis.url)
        try:
            return int(client.publish("result", json.dumps(message)))
        finally:
            client.close()

    def cli(self, argv: Sequence[str], stdin: str | None = None) -> str:
        """Run one of our command-line tools against this suite; its output (it must succeed)."""
        done = subprocess.run(argv, env=self.env, input=stdin, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{argv[0]}: {done.stderr}"
        return done.stdout

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{p.log()[-3000:]}" for name, p in self.processes.items())

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout}s: {what}\n{self.logs()}")
            time.sleep(0.1)


@contextlib.contextmanager
def running_suite(
    prefix: str,
    *,
    prepare: Callable[[str], None] | None = None,
    extra_args: Mapping[str, Sequence[str]] | None = None,
    auto_upload_command: Sequence[str] = ("serve",),
    env: Mapping[str, str] | None = None,
) -> Iterator[Suite]:
    """The suite, torn down afterwards.

    ``prepare`` gets the empty database's URL before ``janitor-db upgrade``
    (to make it as the platform's own SQL would); ``extra_args`` adds flags
    per service; ``auto_upload_command`` is what comes before its options
    (nothing, as the platform's manifests start it).
    """
    base = world_traversable_tmpdir(prefix)  # PostgreSQL runs as postgres when we are root
    pg = Postgres(base / "pg", free_port(), fast=True)
    redis_server = RedisServer(base / "redis", free_port())
    pg.init()
    pg.start()
    redis_server.start()
    processes: dict[str, ServiceProcess] = {}
    try:
        database_url = pg.create_database("janitor")
        if prepare is not None:
            prepare(database_url)
        artifacts, cache, incoming, vcs = base / "artifacts", base / "cache", base / "incoming", base / "bzr"
        for d in (artifacts, cache, incoming, vcs):
            d.mkdir()
        conf = base / "janitor.conf"
        locations = (
            f'database_location: "{database_url}"\nredis_location: "{redis_server.url}"\n'
            f'artifact_location: "{artifacts}"\n'
        )
        conf.write_text(locations + JANITOR_CONF)
        dput_cf = base / "dput.cf"
        dput_cf.write_text(f"[archive]\nmethod = local\nincoming = {incoming}\nallow_unsigned_uploads = 0\n")
        keyid = ensure_signing_key(base / "gnupg")
        service_environment = service_env(JANITOR_CONFIG=str(conf), GNUPGHOME=str(base / "gnupg"), **(env or {}))
        ports = {name: free_port() for name in SERVICES}
        public = free_port()
        suite = Suite(
            base,
            pg,
            redis_server,
            database_url,
            artifacts,
            cache,
            incoming,
            vcs,
            service_environment,
            {name: f"http://127.0.0.1:{ports[name]}" for name in SERVICES},
            f"http://127.0.0.1:{public}",
            processes,
        )
        suite.cli([console_script("janitor-db"), "upgrade"])
        argvs = {
            "bzr-store": [console_script("janitor-bzr-store"), "--vcs-path", str(vcs), "--public-port", str(public)],
            "differ": [console_script("janitor-differ"), "--cache-path", str(cache)],
            "auto-upload": [
                console_script("janitor-auto-upload"),
                *auto_upload_command,
                *("--dput-host", "archive", "--dput-config", str(dput_cf), "--debsign-keyid", keyid),
                *("--distribution", "lintian-fixes", "--state-dir", str(base / "upload-state")),
            ],
        }
        for name, argv in argvs.items():
            proc = ServiceProcess(
                [*argv, *(extra_args or {}).get(name, ()), "--port", str(ports[name]), "--config", str(conf)],
                service_environment,
                f"{suite.urls[name]}/health",
                base / f"{name}.log",
            )
            processes[name] = proc
            proc.start(timeout=60)
        yield suite
    finally:
        for proc in processes.values():
            proc.stop()
        redis_server.stop()
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
