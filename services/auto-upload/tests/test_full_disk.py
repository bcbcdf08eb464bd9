"""Full disks on either side of an upload: retried with the reason recorded, never stranded or failed for good."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from janitor_auto_upload.app import create_app
from janitor_dev.debbuild import build_upload
from janitor_dev.testing import asgi_client

from .conftest import Keyring, Target, add_build, upload_settings
from .test_uploads import verify


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []
    yield mounted
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def small_fs(path: Path, size: str, mounted: list[Path]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    mounted.append(path)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb") as f, pytest.raises(OSError):
        for _ in range(1 << 16):
            f.write(b"\0" * 65536)
            f.flush()
    return filler


async def rows_until(client, predicate, timeout: float = 60.0) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        rows: list[dict[str, object]] = (await client.get("/uploads")).json()
        if rows and predicate(rows[0]):
            return rows
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout}s: {rows}")
        await asyncio.sleep(0.1)


async def test_full_upload_target_is_retried_and_names_the_partial_files(
    database_url: str, redis_url: str, target: Target, keyring: Keyring, mounts: list[Path]
) -> None:
    build_upload(target.artifacts / "run-t", "roomless", "1.0", binary=False)
    add_build(database_url, "run-t", "roomless", "1.0")
    small_fs(target.incoming, "256k", mounts)
    filler = fill(target.incoming)
    settings = upload_settings(database_url, redis_url, target, keyring, source_only=True, retry_base_seconds=0.5)
    async with asgi_client(create_app(settings)) as client:
        rows = await rows_until(client, lambda r: bool(r["last_error"]))
        row = rows[0]
        assert row["state"] in ("pending", "uploading"), row  # transient: not failed for good
        error = str(row["last_error"])
        assert "No space left on device" in error
        assert "partial files left at the target:" in error and "roomless_1.0_source.changes" in error
        filler.unlink()
        rows = await rows_until(client, lambda r: r["state"] == "uploaded")
        assert rows[0]["last_error"] is None and int(rows[0]["attempts"]) >= 2  # type: ignore[call-overload]
    assert verify(target.incoming / "roomless_1.0_source.changes")


async def test_full_state_directory_is_retried_with_its_reason(
    database_url: str, redis_url: str, target: Target, keyring: Keyring, mounts: list[Path]
) -> None:
    build_upload(target.artifacts / "run-s", "stateless", "1.0", binary=False)
    add_build(database_url, "run-s", "stateless", "1.0")
    small_fs(target.state, "256k", mounts)
    filler = fill(target.state)
    settings = upload_settings(database_url, redis_url, target, keyring, source_only=True, retry_base_seconds=0.5)
    async with asgi_client(create_app(settings)) as client:
        rows = await rows_until(client, lambda r: bool(r["last_error"]))
        assert rows[0]["state"] in ("pending", "uploading")
        assert "local I/O error" in str(rows[0]["last_error"]) and "No space left" in str(rows[0]["last_error"])
        assert target.arrived() == []
        filler.unlink()
        await rows_until(client, lambda r: r["state"] == "uploaded")
    assert "stateless_1.0_source.changes" in target.arrived()
