"""``make run``: the whole suite on one machine, with nothing to configure.

Everything lives under ``.run/`` (override with ``JANITOR_RUN_DIR``): a
private PostgreSQL cluster and Redis on loopback ports of their own, the
services' data, a demo signing key and a local upload target. Running it
again reuses all of it. Ctrl-C stops the services first, then Redis and
PostgreSQL.

The services are found through the ``janitor.dev`` entry point group: each
names a function that takes the facilities this stack prepared (a mapping
with ``run_dir``, ``signing_key``, ``dput_config``, ``dput_host`` and
``upload_distributions``) and
answers how to start it: ``name``, ``argv`` (a console script and its
arguments), ``ports`` (label -> port it listens on), ``health_port`` (where
``/health`` answers), ``urls`` (label -> what the banner shows) and
``endpoints`` (role -> base URL: the demo looks up ``bzr-public`` and
``differ`` there). So this
module names no service, and a new service is started by declaring one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import httpx

from janitor_common.db import migrate

from .demo import (
    DEMO_CAMPAIGN,
    DEMO_CODEBASE,
    DEMO_WORKER,
    JANITOR_CONF,
    ensure_demo_data,
    ensure_signing_key,
    ensure_upload_target,
    stop_gpg_agent,
)
from .devstack import (
    DevStackError,
    Postgres,
    RedisServer,
    link_pg_data_dir,
    pg_data_dir,
    port_in_use,
    stop_cleanly_on_signals,
)
from .seed import PACKAGE, DemoStack, SeedError, demo_runs_exist, publish_pair, wait_for_pair


def say(message: str) -> None:
    print(f"make run: {message}", flush=True)


def env_port(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


ENTRY_POINT_GROUP = "janitor.dev"


@dataclass(frozen=True)
class Launch:
    """How one service is started; each service's ``dev.launch`` says."""

    name: str
    argv: list[str]
    ports: dict[str, int]
    health_port: int
    urls: dict[str, str]
    endpoints: dict[str, str]


def service_launches(facilities: Mapping[str, str]) -> list[Launch]:
    """Every installed service's answer, in name order."""
    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    if not found:
        raise DevStackError(f"no installed package declares a {ENTRY_POINT_GROUP!r} entry point; run make install")
    launches = []
    for entry in found:
        answer = entry.load()(facilities)
        try:
            launches.append(Launch(**answer))
        except TypeError as e:
            raise DevStackError(f"{entry.value}: not a launch description ({e})") from None
    return launches


class Child:
    """A service process whose output is shown with its name in front."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            sys.stdout.write(f"[{self.name}] {raw.decode(errors='replace')}")
            sys.stdout.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(2)


def prepare_demo(
    run_dir: Path, database_url: str, redis_url: str, endpoints: dict[str, str], password: str
) -> DemoStack:
    """The demo's state; on a first start (or a new database) one pair of runs is pushed, built and published."""
    stack = DemoStack(
        run_dir=str(run_dir),
        database_url=database_url,
        redis_url=redis_url,
        bzr_url=endpoints["bzr-public"],
        differ_url=endpoints["differ"],
        worker=DEMO_WORKER,
        password=password,
        incoming=str(run_dir / "incoming"),
    )
    with contextlib.suppress(FileNotFoundError, TypeError, ValueError):
        stack.pairs = DemoStack.load(run_dir).pairs
    if demo_runs_exist(stack):
        stack.save()
        return stack
    stack.pairs = []
    started = time.monotonic()
    pair = publish_pair(stack, say)
    say("demo: waiting for the differ's diff and auto-upload's upload")
    wait_for_pair(stack, pair)
    say(f"demo: seeded in {time.monotonic() - started:.1f}s")
    return stack


def demo_commands(demo: DemoStack, bindir: Path, database_url: str, run_dir: Path) -> str:
    """Commands that work when pasted, with this stack's ports."""
    pair = demo.pairs[-1]
    old, new = pair["old"], pair["new"]
    changes = f"{run_dir / 'incoming'}/{PACKAGE}_{pair['version']}_amd64.changes"
    brz = bindir / "brz"
    return f"""
Try the demo (runs {old} and {new}):
  {brz} branch {demo.branch_url(DEMO_CAMPAIGN)} /tmp/demo-branch
  cd /tmp/demo-branch && echo '# a change' >> hello && BRZ_EMAIL='You <you@example.com>' {brz} commit -m 'A change' \\
    && {brz} push {demo.branch_url(DEMO_CAMPAIGN, write=True)}; cd -
  curl {demo.differ_url}/debdiff/{old}/{new} -H 'Accept: text/plain'
  curl {demo.differ_url}/diffoscope/{old}/{new} -H 'Accept: text/plain'
  curl {demo.differ_url}/diffoscope/{old}/{new} -H 'Accept: text/html' -o diffoscope.html
  in a browser:  {demo.differ_url}/diffoscope/{old}/{new}   and   {demo.differ_url}/debdiff/{old}/{new}
  ls {run_dir / "incoming"}        # the changed run's upload
  GNUPGHOME={run_dir / "gnupg"} gpg --verify {changes}
  JANITOR_DATABASE_URL={database_url} {bindir / "janitor-auto-upload"} force {new}
  {bindir / "janitor-demo"} publish       # a new pair of runs through the whole suite
"""


def wait_healthy(url: str, child: Child, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise DevStackError(f"{child.name} exited with status {child.proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise DevStackError(f"{child.name} did not become healthy at {url}")


def main() -> int:
    stop_cleanly_on_signals()
    run_dir = Path(os.environ.get("JANITOR_RUN_DIR", ".run")).absolute()
    run_dir.mkdir(exist_ok=True)
    bindir = Path(sys.executable).parent
    pg_port = env_port("JANITOR_RUN_PG_PORT", 15432)
    redis_port = env_port("JANITOR_RUN_REDIS_PORT", 16379)
    movable = {"PostgreSQL": (pg_port, "JANITOR_RUN_PG_PORT"), "Redis": (redis_port, "JANITOR_RUN_REDIS_PORT")}
    busy_servers = [
        f"{name} ({port}; set {var} to move it)" for name, (port, var) in movable.items() if port_in_use(port)
    ]
    if busy_servers:
        say("ports in use: " + ", ".join(busy_servers))
        return 1
    try:
        dput_config = ensure_upload_target(run_dir)
        facilities = {
            "run_dir": str(run_dir),
            "signing_key": ensure_signing_key(run_dir / "gnupg"),
            "dput_config": str(dput_config),
            "dput_host": "local",
            "upload_distributions": DEMO_CAMPAIGN,
        }
        launches = service_launches(facilities)
    except (DevStackError, subprocess.CalledProcessError, OSError) as e:
        say(f"error: {e}")
        stop_gpg_agent(run_dir / "gnupg")
        return 1
    busy = [f"{label} ({port})" for launch in launches for label, port in launch.ports.items() if port_in_use(port)]
    if busy:
        say("ports in use: " + ", ".join(busy) + "; stop what holds them and try again")
        stop_gpg_agent(run_dir / "gnupg")
        return 1

    datadir = pg_data_dir(run_dir)
    link_pg_data_dir(run_dir, datadir)
    pg = Postgres(datadir, pg_port)
    redis = RedisServer(run_dir / "redis", redis_port)
    children: list[Child] = []
    try:
        say(f"PostgreSQL in {pg.datadir} on 127.0.0.1:{pg_port}")
        pg.init()
        pg.start()
        if not pg.database_exists("janitor"):
            pg.create_database("janitor")
        database_url = pg.url("janitor")
        say("applying migrations")
        migrate.upgrade(database_url)
        say(f"Redis on 127.0.0.1:{redis_port}")
        redis.start()

        password = ensure_demo_data(database_url, run_dir)
        fingerprint = facilities["signing_key"]
        (run_dir / "artifacts").mkdir(exist_ok=True)
        conf = run_dir / "janitor.conf"
        conf.write_text(JANITOR_CONF)

        env = {k: v for k, v in os.environ.items() if not k.startswith("JANITOR_")}
        env.update(
            JANITOR_DATABASE_URL=database_url,
            JANITOR_REDIS_URL=redis.url,
            JANITOR_ARTIFACT_LOCATION=str(run_dir / "artifacts"),
            JANITOR_CONFIG=str(conf),
            GNUPGHOME=str(run_dir / "gnupg"),
        )
        for launch in launches:
            argv = [str(bindir / launch.argv[0]), *launch.argv[1:]]
            children.append(Child(launch.name, argv, env))
        for child, launch in zip(children, launches, strict=True):
            wait_healthy(f"http://127.0.0.1:{launch.health_port}/health", child)

        endpoints = {role: url for launch in launches for role, url in launch.endpoints.items()}
        demo = prepare_demo(run_dir, database_url, redis.url, endpoints, password)
        urls = "\n".join(f"  {label:<18} {url}" for launch in launches for label, url in launch.urls.items())
        print(
            f"""
The Janitor services are running (Ctrl-C stops everything; data stays in {run_dir}).

{urls}

  PostgreSQL         {database_url}
  Redis              {redis.url}
  demo codebase      {DEMO_CODEBASE}  (campaigns: {DEMO_CAMPAIGN}, unchanged)
  demo worker        {DEMO_WORKER} / {password}
  signing key        {fingerprint}  (GNUPGHOME={run_dir / "gnupg"})
  upload target      dput host 'local' in {dput_config} -> {run_dir / "incoming"}
{demo_commands(demo, bindir, database_url, run_dir)}""",
            flush=True,
        )
        while all(c.proc.poll() is None for c in children):
            time.sleep(0.5)
        dead = [c.name for c in children if c.proc.poll() is not None]
        say(f"{', '.join(dead)} exited; stopping everything")
        return 1
    except KeyboardInterrupt:
        print(flush=True)
        say("stopping")
        return 0
    except (DevStackError, SeedError, subprocess.CalledProcessError, OSError) as e:
        say(f"error: {e}")
        return 1
    finally:
        for child in children:
            child.stop()
        for child in children:
            child.wait(20)
        redis.stop()
        pg.stop()
        stop_gpg_agent(run_dir / "gnupg")
        say("stopped")


if __name__ == "__main__":
    sys.exit(main())
