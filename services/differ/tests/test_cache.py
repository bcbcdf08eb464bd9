"""The differ's cache: keys that cannot collide, and writes that may fail."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from janitor_dev.debbuild import build_deb
from janitor_dev.testing import asgi_client
from janitor_differ.app import create_app
from janitor_differ.cache import PAIR, CacheKey, DiffCache

from .conftest import OLD_VERSION, World, add_run, build_old, calls, differ_settings


def test_entry_names_do_not_collide() -> None:
    ids = ["k", "k_a", "a_b", "b", "a", "k_", "x__y", "x_", "y", "a" * 255, "a" * 254 + "_"]
    keys = [CacheKey("debdiff", o, n) for o in ids for n in ids]
    assert len({k.entry for k in keys}) == len(keys)
    # Ids without underscores keep the platform's names.
    assert CacheKey("debdiff", "old-run", "new-run").entry == "debdiff_old-run_new-run"
    assert CacheKey("debdiff", "k_a", "b").entry != CacheKey("debdiff", "k", "a_b").entry
    assert all(len(k.entry) <= 255 for k in keys)


async def test_an_entry_of_another_pair_is_not_served(tmp_path: Path) -> None:
    cache = DiffCache(str(tmp_path / "cache"))
    mine = CacheKey("debdiff", "a", "b")
    await cache.put(mine, "raw", b"mine")
    assert (tmp_path / "cache" / mine.entry / PAIR).exists()
    # Someone else's pair file in this entry (as a hash collision or a foreign writer would leave).
    (tmp_path / "cache" / mine.entry / PAIR).write_bytes(CacheKey("debdiff", "c", "d").pair_bytes())
    assert await DiffCache(str(tmp_path / "cache")).get(mine, "raw") is None
    # An entry written before pair files existed is trusted only when the ids cannot have collided.
    (tmp_path / "cache" / mine.entry / PAIR).unlink()
    assert await DiffCache(str(tmp_path / "cache")).get(mine, "raw") == b"mine"
    legacy = CacheKey("debdiff", "k", "a_b")
    (tmp_path / "cache" / legacy.entry).mkdir()
    (tmp_path / "cache" / legacy.entry / "raw").write_bytes(b"whose?")
    assert await DiffCache(str(tmp_path / "cache")).get(legacy, "raw") is None


def colliding_runs(world: World) -> None:
    """(k_a, b) and (k, a_b): one cache entry under the platform's naming, different diffs."""
    for old in ("k_a", "k"):
        build_old(world.artifacts / old)
        add_run(world.database_url, old, campaign="unchanged", revision="rev-base", version=OLD_VERSION)
    for new, version in (("b", "4.1-1"), ("a_b", "5.1-1")):
        build_deb(world.artifacts / new, "foo", version, {"/usr/share/foo/a.txt": f"version {version}\n"})
        add_run(world.database_url, new, version=version)


@pytest.mark.parametrize("backend", ["local", "s3"])
async def test_colliding_run_ids_get_their_own_diffs(
    world: World, redis_url: str, backend: str, request: pytest.FixtureRequest
) -> None:
    colliding_runs(world)
    cache_path = str(world.cache)
    if backend == "s3":
        cache_path = f"s3://{request.getfixturevalue('s3_env')}/differ-cache"
    app = create_app(differ_settings(world, redis_url, cache_path=cache_path), subscribe=False)
    async with asgi_client(app) as client:
        for tool in ("debdiff", "diffoscope"):
            first = await client.get(f"/{tool}/k_a/b", headers={"Accept": "text/plain"})
            second = await client.get(f"/{tool}/k/a_b", headers={"Accept": "text/plain"})
            assert first.status_code == second.status_code == 200, (first.text, second.text)
            assert "4.1-1" in first.text and "5.1-1" not in first.text
            assert "5.1-1" in second.text and "4.1-1" not in second.text
    # A fresh process (nothing in memory) reads each pair's own entry back.
    app = create_app(differ_settings(world, redis_url, cache_path=cache_path), subscribe=False)
    async with asgi_client(app) as client:
        again = await client.get("/debdiff/k/a_b", headers={"Accept": "text/plain"})
        assert "5.1-1" in again.text and "4.1-1" not in again.text
        assert 'differ_cache_hits_total{tool="debdiff"} 1.0' in (await client.get("/metrics")).text


@pytest.fixture
def small_fs(world: World) -> Iterator[Path]:
    """A 256 KiB tmpfs mounted over the differ's cache directory."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    world.cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(world.cache)], check=True)
    try:
        yield world.cache
    finally:
        subprocess.run(["umount", "-l", str(world.cache)], check=False)


@pytest.mark.parametrize("condition", ["full", "read-only"])
async def test_cache_that_cannot_be_written_still_serves(
    world: World, redis_url: str, small_fs: Path, condition: str, caplog: pytest.LogCaptureFixture
) -> None:
    if condition == "full":
        filler = small_fs / "filler"
        with open(filler, "wb") as f, pytest.raises(OSError):
            f.write(b"x" * (1 << 20))
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    caplog.set_level(logging.WARNING, logger="janitor_differ.cache")
    app = create_app(differ_settings(world, redis_url), subscribe=False)
    async with asgi_client(app) as client:
        for accept in ("text/plain", "text/html", "text/markdown"):
            response = await client.get("/debdiff/old-run/new-run", headers={"Accept": accept})
            assert response.status_code == 200, response.text
            assert "added-file.txt" in response.text
        diffoscope = await client.get("/diffoscope/old-run/new-run", headers={"Accept": "application/json"})
        assert diffoscope.status_code == 200 and diffoscope.json()["details"]
        assert (await client.get("/ready")).status_code == 200
        metrics = (await client.get("/metrics")).text
    failures = [line for line in metrics.splitlines() if line.startswith("differ_cache_write_failures_total ")]
    assert failures and float(failures[0].split()[1]) >= 4
    warnings = [r for r in caplog.records if "cannot write to the cache" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    # Nothing half-written was left.
    assert not [p for p in small_fs.rglob("*") if p.is_file() and p.name != "filler"]


async def test_the_platforms_cache_is_read_and_can_be_written(world: World, redis_url: str) -> None:
    """A cache volume the platform's differ filled is served as it is; with the setting, ours fills it too."""
    platform_debdiff = world.cache / "debdiff" / "old-run_new-run"
    platform_diffoscope = world.cache / "diffoscope" / "old-run_new-run.json"
    platform_debdiff.parent.mkdir(parents=True)
    platform_diffoscope.parent.mkdir(parents=True)
    platform_debdiff.write_text("Files in second .changes but not in first\n---\nfrom the platform's cache\n")
    platform_diffoscope.write_text(
        '{"diffoscope-json-version": 1, "source1": "a", "source2": "b", "unified_diff": null, "details": '
        '[{"source1": "x", "source2": "y", "unified_diff": "@@ -1 +1 @@\\n-from the platform\\n+cache\\n"}]}'
    )
    app = create_app(differ_settings(world, redis_url), subscribe=False)
    async with asgi_client(app) as client:
        debdiff = await client.get("/debdiff/old-run/new-run", headers={"Accept": "text/plain"})
        assert debdiff.status_code == 200 and "from the platform's cache" in debdiff.text
        diffoscope = await client.get("/diffoscope/old-run/new-run", headers={"Accept": "application/json"})
        assert diffoscope.json()["details"][0]["source1"] == "x"
    assert not calls(world, "debdiff") and not calls(world, "diffoscope")

    platform_debdiff.unlink()
    platform_diffoscope.unlink()
    for entry in world.cache.glob("*_old-run_new-run"):
        shutil.rmtree(entry)
    app = create_app(differ_settings(world, redis_url, platform_cache_layout=True), subscribe=False)
    async with asgi_client(app) as client:
        debdiff = await client.get("/debdiff/old-run/new-run", headers={"Accept": "text/plain"})
        assert "added-file.txt" in debdiff.text
        assert (await client.get("/diffoscope/old-run/new-run", headers={"Accept": "application/json"})).json()
    assert platform_debdiff.read_text() == debdiff.text
    assert json.loads(platform_diffoscope.read_text())["details"]
    # Ids with underscores have no unambiguous place there: nothing is read or written for them.
    assert CacheKey("debdiff", "k_a", "b").platform_place is None
