"""Signed uploads with real debsign and dput, from result messages and catch-up."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import redis.asyncio as aioredis

from janitor_auto_upload.app import create_app
from janitor_common.pubsub import publish_result
from janitor_dev.debbuild import build_upload
from janitor_dev.testing import asgi_client

from .conftest import Keyring, Target, UploadServer, add_build, upload_settings


def result(run_id: str, *, code: str = "success", target: object = None, distribution: str = "lintian-fixes") -> dict:  # type: ignore[type-arg]
    if target is None:
        target = {"name": "debian", "details": {"build_distribution": distribution}}
    return {"log_id": run_id, "code": code, "codebase": "foo", "target": target}


async def wait_for(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def subscribed(redis_url: str) -> aioredis.Redis:
    client = aioredis.from_url(redis_url)
    for _ in range(200):
        if (await client.pubsub_numsub("result"))[0][1] >= 1:
            return client
        await asyncio.sleep(0.05)
    raise AssertionError("service never subscribed")


def verify(path: Path) -> bool:
    return subprocess.run(["gpg", "--verify", str(path)], capture_output=True).returncode == 0


async def test_result_message_leads_to_a_signed_upload(
    database_url: str, redis_url: str, target: Target, keyring: Keyring
) -> None:
    # No database row: only the message can make this upload happen (catch-up cannot see it).
    names = build_upload(target.artifacts / "run-1", "foo", "1.0")
    settings = upload_settings(database_url, redis_url, target, keyring, catchup_interval=3600)
    async with asgi_client(create_app(settings)) as client:
        await asyncio.sleep(0.5)
        assert target.arrived() == []
        redis = await subscribed(redis_url)
        await publish_result(redis, result("run-1"))
        await redis.aclose()
        await wait_for(lambda: {"foo_1.0_source.changes", "foo_1.0_all.changes"} <= set(target.arrived()))
        # The ledger is updated just after dput returns.
        for _ in range(100):
            uploads = (await client.get("/uploads", params={"state": "uploaded"})).json()
            if len(uploads) == 2:
                break
            await asyncio.sleep(0.1)
        assert sorted(u["changes_filename"] for u in uploads) == ["foo_1.0_all.changes", "foo_1.0_source.changes"]
        metrics = (await client.get("/metrics")).text
        assert 'uploads_total{outcome="uploaded"} 2.0' in metrics
        assert (await client.get("/uploads", params={"state": "nope"})).status_code == 400
    for name in ("foo_1.0_source.changes", "foo_1.0_all.changes", "foo_1.0.dsc"):
        assert verify(target.incoming / name), name
    assert "foo_1.0_all.deb" in target.arrived() and "foo_1.0.tar.xz" in target.arrived()
    assert set(names) >= {"foo_1.0_source.changes", "foo_1.0_all.changes"}


async def test_messages_not_for_us_upload_nothing_and_the_service_keeps_listening(
    database_url: str, redis_url: str, target: Target, keyring: Keyring
) -> None:
    for i, dist in enumerate(["lintian-fixes", "lintian-fixes", "lintian-fixes", "other-dist"]):
        build_upload(target.artifacts / f"skip-{i}", f"skip{i}", "1.0", distribution=dist)
    build_upload(target.artifacts / "good", "good", "2.0")
    settings = upload_settings(
        database_url, redis_url, target, keyring, distribution=["lintian-fixes"], catchup_interval=3600
    )
    async with asgi_client(create_app(settings)) as client:
        redis = await subscribed(redis_url)
        await publish_result(redis, result("skip-0", code="build-failed"))
        await publish_result(redis, result("skip-1", target={"name": "git", "details": {}}))
        await publish_result(redis, result("skip-2", target={}))
        await publish_result(redis, result("skip-3", distribution="other-dist"))
        await redis.publish("result", b"{not json")
        await redis.publish("result", json.dumps({"code": "success"}))
        await publish_result(redis, result("good"))
        await redis.aclose()
        await wait_for(lambda: "good_2.0_source.changes" in target.arrived())
        await asyncio.sleep(0.5)
        assert not [n for n in target.arrived() if n.startswith("skip")]
        assert {u["run_id"] for u in (await client.get("/uploads")).json()} == {"good"}


async def test_source_only(database_url: str, redis_url: str, target: Target, keyring: Keyring) -> None:
    build_upload(target.artifacts / "run-s", "src", "1.0")
    add_build(database_url, "run-s", "src", "1.0")
    settings = upload_settings(database_url, redis_url, target, keyring, source_only=True)
    async with asgi_client(create_app(settings)):
        await wait_for(lambda: "src_1.0_source.changes" in target.arrived())
        await asyncio.sleep(0.5)
    assert not [n for n in target.arrived() if n.endswith(("_all.changes", ".deb"))]


async def test_debsign_failure_runs_no_dput(
    database_url: str, redis_url: str, target: Target, keyring: Keyring
) -> None:
    build_upload(target.artifacts / "run-k", "nokey", "1.0")
    add_build(database_url, "run-k", "nokey", "1.0")
    settings = upload_settings(
        database_url, redis_url, target, keyring, debsign_keyid="0000DEADBEEF0000", source_only=True
    )
    async with asgi_client(create_app(settings)) as client:

        async def failed() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = (await client.get("/uploads", params={"state": "failed"})).json()
            return rows

        for _ in range(300):
            if await failed():
                break
            await asyncio.sleep(0.1)
        (row,) = await failed()
        assert row["last_error"].startswith("debsign exit") and "0000DEADBEEF0000" in row["last_error"]
        assert "debsign_failed_total 1.0" in (await client.get("/metrics")).text
    assert target.arrived() == []


async def test_dput_failure_is_retried_then_recorded(
    database_url: str, redis_url: str, target: Target, keyring: Keyring
) -> None:
    from janitor_dev.devstack import free_port

    build_upload(target.artifacts / "run-d", "down", "1.0")
    add_build(database_url, "run-d", "down", "1.0")
    # An FTP target on a loopback port where nothing listens: connection refused, a transient failure.
    target.config.write_text(
        f"[local]\nmethod = ftp\nfqdn = 127.0.0.1:{free_port()}\nincoming = /incoming\nlogin = anonymous\n"
        "allow_unsigned_uploads = 0\n"
    )
    settings = upload_settings(database_url, redis_url, target, keyring, source_only=True, max_attempts=3)
    async with asgi_client(create_app(settings)) as client:
        for _ in range(300):
            rows = (await client.get("/uploads", params={"state": "failed"})).json()
            if rows:
                break
            await asyncio.sleep(0.1)
        (row,) = rows
        assert row["attempts"] == 3
        assert "dput" in row["last_error"] and "refused" in row["last_error"].lower()
        metrics = (await client.get("/metrics")).text
        assert "upload_failed_total 3.0" in metrics and 'uploads_total{outcome="retry"} 2.0' in metrics


async def test_results_published_while_stopped_are_caught_up(
    database_url: str, redis_url: str, target: Target, keyring: Keyring
) -> None:
    redis = aioredis.from_url(redis_url)
    for i in range(20):
        build_upload(target.artifacts / f"late-{i}", f"late{i}", "1.0")
        add_build(database_url, f"late-{i}", f"late{i}", "1.0")
        assert await publish_result(redis, result(f"late-{i}")) == 0  # nobody listening
    await redis.aclose()
    settings = upload_settings(database_url, redis_url, target, keyring, source_only=True)
    async with asgi_client(create_app(settings)):
        await wait_for(lambda: len([n for n in target.arrived() if n.endswith("_source.changes")]) == 20, timeout=90)
    assert sorted(n for n in target.arrived() if n.endswith("_source.changes")) == sorted(
        f"late{i}_1.0_source.changes" for i in range(20)
    )


def test_backfill_twice_uploads_once(database_url: str, redis_url: str, target: Target, keyring: Keyring) -> None:
    import os

    from janitor_dev.testing import console_script

    # Two builds of one source: only the newer is backfilled; another source too.
    build_upload(target.artifacts / "old-build", "bf", "1.0")
    add_build(database_url, "old-build", "bf", "1.0")
    build_upload(target.artifacts / "new-build", "bf", "1.1")
    add_build(database_url, "new-build", "bf", "1.1")
    build_upload(target.artifacts / "other-build", "bf2", "3.0")
    add_build(database_url, "other-build", "bf2", "3.0")
    argv = [
        console_script("janitor-auto-upload"),
        "backfill",
        "--dput-host",
        "local",
        "--dput-config",
        str(target.config),
        "--debsign-keyid",
        keyring.fingerprint,
        "--state-dir",
        str(target.state),
        "--source-only",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JANITOR_")}
    env.update(
        JANITOR_DATABASE_URL=database_url, JANITOR_REDIS_URL=redis_url, JANITOR_ARTIFACT_LOCATION=str(target.artifacts)
    )
    first = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "backfill: uploaded 2, skipped 0, failed 0"
    assert "2/2" in first.stderr
    assert sorted(n for n in target.arrived() if n.endswith(".changes")) == [
        "bf2_3.0_source.changes",
        "bf_1.1_source.changes",
    ]
    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "backfill: uploaded 0, skipped 2, failed 0"

    # Only an operator's force makes an uploaded build go again.
    force = [console_script("janitor-auto-upload"), "force", "new-build"]
    forced = subprocess.run(force, env=env, capture_output=True, text=True, timeout=60)
    assert forced.returncode == 0 and forced.stdout.strip() == "queued 1 upload(s) of new-build again"
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT state FROM auto_upload WHERE run_id = 'new-build'").fetchone() == ("pending",)
    unknown = subprocess.run([*force[:2], "no-such-run"], env=env, capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 1 and "nothing in the ledger for no-such-run" in unknown.stderr


async def test_a_local_io_error_is_retried_with_its_reason(
    database_url: str, redis_url: str, target: Target, keyring: Keyring
) -> None:
    build_upload(target.artifacts / "run-x", "survivor", "1.0")
    add_build(database_url, "run-x", "survivor", "1.0")
    settings = upload_settings(database_url, redis_url, target, keyring, source_only=True, max_attempts=50)
    app = create_app(settings)  # checks the state directory: made here
    target.state.rmdir()
    target.state.write_text("not a directory")  # from now on every attempt fails with an OSError
    async with asgi_client(app) as client:
        for _ in range(100):
            rows = (await client.get("/uploads")).json()
            if rows and rows[0]["last_error"]:
                break
            await asyncio.sleep(0.1)
        assert target.arrived() == []
        assert rows[0]["state"] in ("pending", "uploading") and "local I/O error" in rows[0]["last_error"]
        target.state.unlink()  # fixed: the row is tried again after its backoff
        await wait_for(lambda: "survivor_1.0_source.changes" in target.arrived(), timeout=30)


async def test_upload_over_http_to_a_loopback_server(
    database_url: str, redis_url: str, target: Target, keyring: Keyring, upload_server: UploadServer
) -> None:
    build_upload(target.artifacts / "run-h", "web", "1.0")
    add_build(database_url, "run-h", "web", "1.0")
    settings = upload_settings(database_url, redis_url, target, keyring, dput_host="web")
    async with asgi_client(create_app(settings)):
        await wait_for(lambda: len(upload_server.uploads()) == 2)
    assert upload_server.uploads() == {"web_1.0_source.changes": 1, "web_1.0_all.changes": 1}
    assert {"web_1.0.dsc", "web_1.0.tar.xz", "web_1.0_all.deb"} <= set(target.arrived())
    for name in ("web_1.0_source.changes", "web_1.0_all.changes"):
        assert verify(target.incoming / name), name


async def test_pending_gauge_follows_the_ledger(
    database_url: str, redis_url: str, target: Target, keyring: Keyring, upload_server: UploadServer
) -> None:
    for i in range(3):
        build_upload(target.artifacts / f"g-{i}", f"gauge{i}", "1.0", binary=False)
        add_build(database_url, f"g-{i}", f"gauge{i}", "1.0")
    upload_server.hold()  # the first upload hangs at the target; the other two wait their turn
    settings = upload_settings(database_url, redis_url, target, keyring, dput_host="web", source_only=True)
    async with asgi_client(create_app(settings)) as client:

        async def gauge() -> str:
            metrics = (await client.get("/metrics")).text
            return next(line for line in metrics.splitlines() if line.startswith("uploads_pending "))

        for _ in range(100):
            if await gauge() == "uploads_pending 3.0":
                break
            await asyncio.sleep(0.1)
        assert await gauge() == "uploads_pending 3.0"
        upload_server.release(refuse=False)
        await wait_for(lambda: len(upload_server.uploads()) == 3)
        for _ in range(100):
            if await gauge() == "uploads_pending 0.0":
                break
            await asyncio.sleep(0.1)
        assert await gauge() == "uploads_pending 0.0"
