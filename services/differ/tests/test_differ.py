"""The differ on real .deb files with the real debdiff and diffoscope."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from janitor_common.pubsub import publish_result
from janitor_dev.testing import asgi_client
from janitor_differ.app import create_app

from .conftest import NEW_VERSION, OLD_VERSION, World, add_run, build_new, build_old, calls, differ_settings

URL_DEBDIFF = "/debdiff/old-run/new-run"
URL_DIFFOSCOPE = "/diffoscope/old-run/new-run"


async def test_debdiff_all_types(client: httpx.AsyncClient) -> None:
    # No preference stated: HTML, as the platform's differ answers.
    for accept in (None, "*/*"):
        default = await client.get(URL_DEBDIFF, headers={"Accept": accept} if accept else {})
        assert default.headers["content-type"].startswith("text/html"), accept
    text = await client.get(URL_DEBDIFF, headers={"Accept": "text/plain"})
    assert text.status_code == 200, text.text
    assert text.headers["content-type"].startswith("text/plain")
    assert "/usr/share/foo/added-file.txt" in text.text
    assert "Control files of package foo: lines which differ" in text.text
    assert "[-misc-] {+utils+}" in text.text
    assert f"[-{OLD_VERSION}-] {{+{NEW_VERSION}+}}" in text.text
    # Packages only on one side are reported, not dropped.
    assert "foo-extra" in text.text and "foo-legacy" in text.text

    xdiff = await client.get(URL_DEBDIFF, headers={"Accept": "text/x-diff"})
    assert xdiff.headers["content-type"].startswith("text/x-diff") and xdiff.text == text.text

    md = await client.get(URL_DEBDIFF, headers={"Accept": "text/markdown"})
    assert md.headers["content-type"].startswith("text/markdown")
    assert "### Control files of package foo: lines which differ (wdiff format)" in md.text
    assert "{+utils+}" in md.text and "/usr/share/foo/added-file.txt" in md.text.replace("\\_", "_")

    page = await client.get(URL_DEBDIFF, headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    # The platform's markup, which the site styles.
    assert "<h4>Control files of package foo: lines which differ (wdiff format)</h4>\n<ul>\n<li><pre>" in page.text
    assert (
        'Section: <span style="color:red;font-weight:bold">misc</span> '
        '<span style="color:green;font-weight:bold">utils</span></pre></li>'
    ) in page.text
    assert "<pre>\n" in page.text and "/usr/share/foo/added-file.txt" in page.text

    assert (await client.get(URL_DEBDIFF, headers={"Accept": "image/png"})).status_code == 406


async def test_debdiff_filter_boring(client: httpx.AsyncClient) -> None:
    plain = {"Accept": "text/plain"}
    full = (await client.get(URL_DEBDIFF, headers=plain)).text
    filtered = (await client.get(URL_DEBDIFF + "?filter_boring", headers=plain)).text
    assert f"Version: [-{OLD_VERSION}-] {{+{NEW_VERSION}+}}" in full
    assert "Version:" not in filtered and "Installed-Size" not in filtered
    # foo's Depends only swapped the version: no change left there; its Section change stays.
    assert "Depends" not in filtered
    assert "Section: [-misc-] {+utils+}" in filtered
    # libjan1 differed only in its version: the section became the verdict line.
    assert "No differences were encountered between the control files of package libjan1" in filtered
    assert "/usr/share/foo/added-file.txt" in filtered


async def test_diffoscope_all_types(client: httpx.AsyncClient) -> None:
    as_json = await client.get(URL_DIFFOSCOPE, headers={"Accept": "application/json"})
    assert as_json.status_code == 200, as_json.text
    diff = as_json.json()
    assert diff["source1"] == f"foo version {OLD_VERSION} (unchanged)"
    assert diff["source2"] == f"foo version {NEW_VERSION} (lintian-fixes)"
    sources = [(d["source1"], d["source2"]) for d in diff["details"]]
    assert (f"foo_{OLD_VERSION}_amd64.deb", f"foo_{NEW_VERSION}_amd64.deb") in sources
    assert ("/dev/null", f"foo-extra_{NEW_VERSION}_amd64.deb") in sources
    assert (f"foo-legacy_{OLD_VERSION}_amd64.deb", "/dev/null") in sources
    assert not any(s.startswith("/tmp") for pair in sources for s in pair)
    blob = json.dumps(diff)
    assert "hello, changed world" in blob and "added-file.txt" in blob

    default = await client.get(URL_DIFFOSCOPE)  # no preference: Markdown, as the platform's differ answers
    assert default.headers["content-type"].startswith("text/markdown")
    text = await client.get(URL_DIFFOSCOPE, headers={"Accept": "text/plain"})
    assert text.headers["content-type"].startswith("text/plain")
    assert "hello, changed world" in text.text and "added-file.txt" in text.text

    md = await client.get(URL_DIFFOSCOPE, headers={"Accept": "text/markdown"})
    assert md.headers["content-type"].startswith("text/markdown") and "hello, changed world" in md.text

    page = await client.get(URL_DIFFOSCOPE + "?css_url=https://example.com/x.css", headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    # The HTML presenter marks changed words inside lines, so look for whole names.
    assert "./usr/share/foo/a.txt" in page.text and "added-file.txt" in page.text
    assert "https://example.com/x.css" in page.text


async def test_diffoscope_filter_boring(client: httpx.AsyncClient) -> None:
    full = (await client.get(URL_DIFFOSCOPE, headers={"Accept": "application/json"})).json()
    filtered = (await client.get(URL_DIFFOSCOPE + "?filter_boring", headers={"Accept": "application/json"})).json()
    # The top-level labels stay as they are, as the platform's do.
    assert (filtered["source1"], filtered["source2"]) == (full["source1"], full["source2"])
    full_blob, filtered_blob = json.dumps(full), json.dumps(filtered["details"])
    assert OLD_VERSION in full_blob
    assert OLD_VERSION not in filtered_blob and NEW_VERSION not in filtered_blob
    display = NEW_VERSION.rsplit("~", 1)[0]

    def control_diffs(diff: dict, package: str) -> list[str]:  # type: ignore[type-arg]
        found: list[str] = []

        def walk(d: dict) -> None:  # type: ignore[type-arg]
            if d.get("source1") == "./control":
                found.append(d.get("unified_diff") or "")
            for sub in d.get("details") or []:
                walk(sub)

        for d in diff["details"]:
            if d["source1"].startswith(package + "_"):
                walk(d)
        return found

    # libjan1's control file differed only by its version: that diff is gone.
    assert control_diffs(full, "libjan1") and not control_diffs(filtered, "libjan1")
    # foo's control file keeps its real change (Section), with the versions unified.
    (foo_control,) = control_diffs(filtered, "foo")
    assert "+Section: utils" in foo_control and "-Section: misc" in foo_control
    assert not [line for line in foo_control.splitlines() if line.startswith(("-Depends", "+Depends", "-Version"))]
    assert "hello, changed world" in filtered_blob
    assert display in filtered_blob
    assert '"details": null' not in filtered_blob and '"details": []' not in filtered_blob
    page = await client.get(URL_DIFFOSCOPE + "?filter_boring", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "./usr/share/foo/a.txt" in page.text


@pytest.mark.parametrize("route", ["debdiff", "diffoscope"])
async def test_unavailable_runs(client: httpx.AsyncClient, world: World, route: str) -> None:
    add_run(world.database_url, "failed-run", result_code="build-failed")
    add_run(world.database_url, "no-debs-run")
    (world.artifacts / "no-debs-run").mkdir()
    (world.artifacts / "no-debs-run" / "build.log").write_text("log\n")
    add_run(world.database_url, "no-build-run", version=None)
    for bad, position in (
        ("missing-run", "old"),
        ("failed-run", "new"),
        ("no-debs-run", "new"),
        ("no-build-run", "old"),
    ):
        url = f"/{route}/{bad}/new-run" if position == "old" else f"/{route}/old-run/{bad}"
        response = await client.get(url)
        assert response.status_code == 404, (bad, response.text)
        assert response.headers["unavailable_run_id"] == bad
        assert response.headers["content-type"].startswith("text/plain")
        as_json = await client.get(url, headers={"Accept": "application/json"})
        assert as_json.status_code == 404, (bad, as_json.status_code, as_json.text)
        assert as_json.json()["run_id"] == bad and as_json.json()["error"]


@pytest.mark.parametrize("route", ["debdiff", "diffoscope"])
async def test_truncated_deb_is_a_clear_error_and_not_cached(
    client: httpx.AsyncClient, world: World, route: str
) -> None:
    deb = world.artifacts / "new-run" / f"foo_{NEW_VERSION}_amd64.deb"
    deb.write_bytes(deb.read_bytes()[:300])
    response = await client.get(f"/{route}/old-run/new-run")
    assert response.status_code == 500
    assert f"foo_{NEW_VERSION}_amd64.deb of run new-run is not a valid package" in response.text
    assert not world.cache.exists() or not any(p.is_file() for p in world.cache.rglob("*"))


async def test_second_request_is_served_from_cache(client: httpx.AsyncClient, world: World) -> None:
    for url, accept in ((URL_DEBDIFF, "text/html"), (URL_DIFFOSCOPE, "text/markdown")):
        first = await client.get(url, headers={"Accept": accept})
        assert first.status_code == 200
        before = world.calls.read_text()
        second = await client.get(url, headers={"Accept": accept})
        assert second.content == first.content
        assert world.calls.read_text() == before, "a cached request started a subprocess"
    metrics = (await client.get("/metrics")).text
    assert 'differ_cache_hits_total{tool="debdiff"}' in metrics


async def test_concurrent_identical_requests_compute_once(client: httpx.AsyncClient, world: World) -> None:
    responses = await asyncio.gather(
        *(client.get(URL_DIFFOSCOPE, headers={"Accept": "application/json"}) for _ in range(4))
    )
    assert all(r.status_code == 200 for r in responses)
    assert len({r.content for r in responses}) == 1
    assert len(calls(world, "diffoscope")) == 2  # one per package pair (foo, libjan1), once


def diffoscope_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "diffoscope" in line and "--json" in line]


async def test_timeout_kills_the_tool(world: World, redis_url: str, tmp_path: Path) -> None:
    slow = tmp_path / "slow-diffoscope"
    slow.write_text('#!/bin/sh\nsleep 30 &\nexec diffoscope "$@"\n')
    slow.chmod(0o755)
    app = create_app(differ_settings(world, redis_url, task_timeout=0.5, diffoscope_command=f"{slow}"), subscribe=False)
    async with asgi_client(app) as client:
        response = await client.get(URL_DIFFOSCOPE)
    assert response.status_code == 504 and response.text == "diffoscope timed out\n"
    await asyncio.sleep(0.2)
    assert diffoscope_processes() == []
    leftover = subprocess.run(["pgrep", "-f", "sleep 30"], capture_output=True, text=True).stdout.split()
    assert leftover == []


async def test_memory_limit(world: World, redis_url: str) -> None:
    app = create_app(differ_settings(world, redis_url, task_memory_limit=60), subscribe=False)
    async with asgi_client(app) as client:
        response = await client.get(URL_DIFFOSCOPE)
    assert response.status_code == 503 and response.text == "diffoscope used too much memory\n"
    assert diffoscope_processes() == []


async def wait_for(predicate, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def test_result_message_precaches_right_pairs_once_across_replicas(world: World, redis_url: str) -> None:
    # A second changed run of the same base, and an unrelated run that must not be paired.
    build_new(world.artifacts / "other-run")
    add_run(world.database_url, "other-run", revision="rev-other", finish_time="2026-01-02 10:00")
    build_old(world.artifacts / "unrelated")
    add_run(world.database_url, "unrelated", codebase="bar", revision="x", main_branch_revision="y")

    apps = [create_app(differ_settings(world, redis_url)) for _ in range(2)]
    async with asgi_client(apps[0]), asgi_client(apps[1]) as c2:
        client = aioredis.from_url(redis_url)
        # Both subscribers must be listening before we publish.
        for _ in range(100):
            if await client.pubsub_numsub("result") == [(b"result", 2)]:
                break
            await asyncio.sleep(0.05)
        receivers = await publish_result(
            client,
            {
                "log_id": "old-run",
                "code": "success",
                "codebase": "foo",
                "revision": "rev-base",
                "main_branch_revision": "rev-base",
                "change_set": "old-run",
                "target": {"name": "debian", "details": {}},
            },
        )
        assert receivers == 2
        await client.aclose()

        def cached(old: str, new: str) -> bool:
            return all((world.cache / f"{tool}_{old}_{new}" / "raw").exists() for tool in ("debdiff", "diffoscope"))

        await wait_for(lambda: cached("old-run", "new-run") and cached("old-run", "other-run"), timeout=120)
        assert not list(world.cache.glob("*unrelated*"))
        # Each pair was computed by one replica only: 2 pairs x 2 package pairs.
        assert len(calls(world, "diffoscope")) == 4
        assert len(calls(world, "debdiff")) == 2
        # Served from the cache now.
        before = world.calls.read_text()
        assert (
            await c2.get("/diffoscope/old-run/other-run", headers={"Accept": "application/json"})
        ).status_code == 200
        assert world.calls.read_text().count("diffoscope ") == before.count("diffoscope ")


async def test_precache_routes(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post("/precache/old-run/new-run")
    assert response.status_code == 202
    await wait_for(lambda: (world.cache / "diffoscope_old-run_new-run" / "raw").exists(), timeout=120)
    all_response = await client.post("/precache-all")
    assert all_response.status_code == 202 and all_response.json() == {"count": 1}
    # A run that does not exist is a 404 at once, as from the platform's differ.
    missing = await client.post("/precache/old-run/no-such-run")
    assert missing.status_code == 404 and missing.headers["unavailable_run_id"] == "no-such-run"
    assert missing.headers["content-type"].startswith("text/plain")


def test_missing_artifact_location_is_one_line(janitor_env: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JANITOR_ARTIFACT_LOCATION"}
    from janitor_dev.testing import console_script

    proc = subprocess.run([console_script("janitor-differ")], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "janitor-differ: janitor-differ needs artifact_location (JANITOR_ARTIFACT_LOCATION)"
    )


async def test_invalid_cache_entries_are_recomputed(client: httpx.AsyncClient, world: World) -> None:
    assert (await client.get(URL_DIFFOSCOPE, headers={"Accept": "application/json"})).status_code == 200
    assert (await client.get(URL_DEBDIFF)).status_code == 200
    raw = world.cache / "diffoscope_old-run_new-run" / "raw"
    raw.write_text("{ truncated")  # not valid JSON: must not be served
    (world.cache / "debdiff_old-run_new-run" / "raw").write_bytes(b"\xff\xfe not utf-8")
    diffoscope_before, debdiff_before = len(calls(world, "diffoscope")), len(calls(world, "debdiff"))
    again = await client.get("/diffoscope/old-run/new-run?filter_boring", headers={"Accept": "application/json"})
    assert again.status_code == 200 and OLD_VERSION not in json.dumps(again.json()["details"])
    assert len(calls(world, "diffoscope")) > diffoscope_before
    assert json.loads(raw.read_text())["details"]
    filtered = await client.get(URL_DEBDIFF + "?filter_boring")
    assert filtered.status_code == 200 and "added-file.txt" in filtered.text
    assert len(calls(world, "debdiff")) == debdiff_before + 1


async def test_unreadable_cache_entry_reads_as_missing(tmp_path: Path) -> None:
    from janitor_differ.cache import CacheKey, DiffCache

    cache = DiffCache(str(tmp_path / "cache"))

    async def unreadable(run_id: str, name: str) -> bytes:
        raise PermissionError(13, "Permission denied")

    cache.store.get = unreadable  # type: ignore[method-assign]
    assert await cache.get(CacheKey("diffoscope", "a", "b"), "raw") is None


@pytest.mark.parametrize(
    "path",
    [
        "/debdiff/%F3%BB%9B%BA/%F3%BB%9B%BA",
        "/debdiff/%00/new-run",
        "/debdiff/%c0%ae%c0%ae/new-run",
        "/debdiff/%e2%82%ac/new-run",
        "/diffoscope/old-run/%0d%0aX-Injected:%201",
        "/diffoscope/" + "a" * 4000 + "/new-run",
    ],
)
async def test_run_ids_no_run_can_have_are_404_with_a_safe_header(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404, response.text
    header = response.headers["unavailable_run_id"]
    assert header.isascii() and header.isprintable()
    assert "x-injected" not in response.headers
    as_json = await client.get(path, headers={"Accept": "application/json"})
    assert as_json.status_code == 404 and as_json.json()["run_id"]
