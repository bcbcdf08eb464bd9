"""Two real runs with real .deb files, in a real database and artifact store."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from janitor_dev.debbuild import build_deb
from janitor_dev.testing import asgi_client
from janitor_differ.app import create_app
from janitor_differ.settings import DifferSettings

OLD_VERSION = "1.0-1~jan+unchanged1"
NEW_VERSION = "1.0-2~jan+lint1"


@dataclass
class World:
    database_url: str
    artifacts: Path
    cache: Path
    calls: Path  # one line per tool invocation, written by the wrappers


def add_run(
    database_url: str,
    run_id: str,
    *,
    codebase: str = "foo",
    campaign: str = "lintian-fixes",
    result_code: str = "success",
    revision: str = "rev-new",
    main_branch_revision: str = "rev-base",
    change_set: str | None = None,
    version: str | None = NEW_VERSION,
    finish_time: str = "2026-01-01 10:00",
) -> None:
    change_set = change_set or run_id
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO codebase (name) VALUES (%s) ON CONFLICT DO NOTHING", (codebase,))
        conn.execute(
            "INSERT INTO change_set (id, campaign) VALUES (%s, %s) ON CONFLICT DO NOTHING", (change_set, campaign)
        )
        conn.execute(
            "INSERT INTO run (id, codebase, suite, result_code, revision, main_branch_revision, change_set,"
            " finish_time) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (run_id, codebase, campaign, result_code, revision, main_branch_revision, change_set, finish_time),
        )
        if version is not None:
            conn.execute(
                "INSERT INTO debian_build (run_id, version, distribution, source, binary_packages)"
                " VALUES (%s, %s, %s, %s, %s)",
                (run_id, version, campaign, "foo", ["foo", "libjan1"]),
            )


def build_old(dest: Path) -> None:
    build_deb(
        dest,
        "foo",
        OLD_VERSION,
        {"/usr/share/foo/a.txt": "hello\n", "/usr/bin/foo": "#!/bin/sh\necho foo\n"},
        control={"Depends": f"libjan1 (= {OLD_VERSION})"},
    )
    build_deb(dest, "libjan1", OLD_VERSION, {"/usr/lib/libjan.so.1": "old library\n"})
    build_deb(dest, "foo-legacy", OLD_VERSION, {"/usr/share/foo-legacy/x": "legacy\n"})


def build_new(dest: Path) -> None:
    build_deb(
        dest,
        "foo",
        NEW_VERSION,
        {
            "/usr/share/foo/a.txt": "hello, changed world\n",
            "/usr/bin/foo": "#!/bin/sh\necho foo\n",
            "/usr/share/foo/added-file.txt": "new\n",
        },
        control={"Depends": f"libjan1 (= {NEW_VERSION})", "Section": "utils"},
    )
    build_deb(dest, "libjan1", NEW_VERSION, {"/usr/lib/libjan.so.1": "old library\n"})
    build_deb(dest, "foo-extra", NEW_VERSION, {"/usr/share/foo-extra/y": "extra\n"})


def wrappers(bindir: Path, calls: Path) -> None:
    """debdiff, diffoscope and dpkg-deb wrappers that log each call, then run the real tool."""
    bindir.mkdir()
    for tool in ("debdiff", "diffoscope", "dpkg-deb"):
        wrapper = bindir / tool
        wrapper.write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\nexec /usr/bin/{tool} "$@"\n')
        wrapper.chmod(0o755)


@pytest.fixture
def world(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    artifacts = tmp_path / "artifacts"
    build_old(artifacts / "old-run")
    build_new(artifacts / "new-run")
    add_run(
        database_url,
        "old-run",
        campaign="unchanged",
        revision="rev-base",
        main_branch_revision="rev-base",
        version=OLD_VERSION,
    )
    add_run(database_url, "new-run", campaign="lintian-fixes", version=NEW_VERSION)
    calls = tmp_path / "calls.log"
    calls.touch()
    wrappers(tmp_path / "bin", calls)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    return World(database_url, artifacts, tmp_path / "cache", calls)


def differ_settings(world: World, redis_url: str, **overrides: object) -> DifferSettings:
    values: dict[str, object] = {
        "database_url": world.database_url,
        "redis_url": redis_url,
        "artifact_location": str(world.artifacts),
        "cache_path": str(world.cache),
        "diffoscope_command": "diffoscope",
    }
    values.update(overrides)
    return DifferSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def client(world: World, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(differ_settings(world, redis_url), subscribe=False)
    async with asgi_client(app) as c:
        yield c


def calls(world: World, tool: str) -> list[str]:
    return [line for line in world.calls.read_text().splitlines() if line.startswith(tool + " ")]
