import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from janitor_common.artifacts import (
    ArtifactManager,
    ArtifactsMissing,
    GCSArtifactManager,
    LocalArtifactManager,
    S3ArtifactManager,
    get_artifact_manager,
)


def make_run_dir(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "foo_1.0_amd64.deb").write_bytes(os.urandom(3 << 20))  # multi-part sized upload
    (src / "foo_1.0_amd64.changes").write_text("Format: 1.8\n")
    (src / "build.log").write_text("log\n")
    return src


async def round_trip(manager: ArtifactManager, tmp_path: Path) -> None:
    src = make_run_dir(tmp_path)
    stored = await manager.store("run-1", src)
    assert stored == ["build.log", "foo_1.0_amd64.changes", "foo_1.0_amd64.deb"]
    await manager.store("run-2", src, ["build.log"])
    assert await manager.list_names("run-1") == stored

    dest = tmp_path / "dest"
    got = await manager.retrieve("run-1", dest, lambda n: n.endswith((".deb", ".changes")))
    assert got == ["foo_1.0_amd64.changes", "foo_1.0_amd64.deb"]
    assert sorted(p.name for p in dest.iterdir()) == got  # no temp files left
    assert (dest / "foo_1.0_amd64.deb").read_bytes() == (src / "foo_1.0_amd64.deb").read_bytes()
    assert await manager.get("run-1", "build.log") == b"log\n"

    with pytest.raises(ArtifactsMissing):
        await manager.retrieve("no-such-run", tmp_path / "x")
    with pytest.raises(ArtifactsMissing):
        await manager.get("run-1", "missing.txt")


async def test_local_round_trip(tmp_path: Path) -> None:
    manager = get_artifact_manager(str(tmp_path / "store"))
    assert isinstance(manager, LocalArtifactManager)
    await round_trip(manager, tmp_path)
    assert sorted(os.listdir(tmp_path / "store" / "run-1")) == [
        "build.log",
        "foo_1.0_amd64.changes",
        "foo_1.0_amd64.deb",
    ]


async def test_s3_round_trip(tmp_path: Path, s3_env: str) -> None:
    manager = get_artifact_manager(f"s3://{s3_env}/some/prefix")
    assert isinstance(manager, S3ArtifactManager)
    await round_trip(manager, tmp_path)
    keys = sorted(o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_env)["Contents"])
    assert keys[0] == "some/prefix/run-1/build.log"


BAD_RUN_IDS = ["..", "../x", "a/b", "/etc", "a\x00b", "", ".hidden", "a\\b", "%2e%2e"]
BAD_NAMES = ["..", "../passwd", "a/b", "/etc/passwd", "x\x00y", "", ".tmp", "a\\b", "new\nline"]


@pytest.mark.parametrize("run_id", BAD_RUN_IDS)
async def test_bad_run_ids_rejected(tmp_path: Path, run_id: str) -> None:
    manager = LocalArtifactManager(tmp_path / "store")
    src = make_run_dir(tmp_path)
    with pytest.raises(ValueError):
        await manager.store(run_id, src)
    with pytest.raises(ValueError):
        await manager.retrieve(run_id, tmp_path / "dest")
    with pytest.raises(ValueError):
        await manager.get(run_id, "build.log")
    with pytest.raises(ValueError):
        await manager.list_names(run_id)
    assert not (tmp_path / "store").exists() or os.listdir(tmp_path / "store") == []


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_bad_names_rejected(tmp_path: Path, name: str) -> None:
    manager = LocalArtifactManager(tmp_path / "store")
    with pytest.raises(ValueError):
        await manager.get("run-1", name)
    with pytest.raises(ValueError):
        await manager.store("run-1", tmp_path, [name])


async def test_symlink_planted_in_store_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    store = tmp_path / "store"
    store.mkdir()
    (store / "evil").symlink_to(outside)
    manager = LocalArtifactManager(store)
    with pytest.raises(ValueError, match="escapes"):
        await manager.get("evil", "secret")
    with pytest.raises(ValueError, match="escapes"):
        await manager.store("evil", make_run_dir(tmp_path))
    assert os.listdir(outside) == ["secret"]


class FakeBlob:
    def __init__(self, store: dict[str, bytes], name: str) -> None:
        self.store, self.name = store, name

    def upload_from_filename(self, filename: str) -> None:
        self.store[self.name] = Path(filename).read_bytes()

    def download_to_file(self, f: Any) -> None:
        f.write(self.store[self.name])

    def download_as_bytes(self) -> bytes:
        from google.api_core.exceptions import NotFound

        if self.name not in self.store:
            raise NotFound("no such object")  # type: ignore[no-untyped-call]  # google-api-core is untyped
        return self.store[self.name]

    def delete(self) -> None:
        del self.store[self.name]


class FakeIterator:
    def __init__(self, blobs: list[FakeBlob], prefixes: set[str]) -> None:
        self.blobs, self.prefixes = blobs, prefixes
        self.pages = [blobs]

    def __iter__(self) -> Iterator[FakeBlob]:
        return iter(self.blobs)


class FakeGCSClient:
    """Stands in for google.cloud.storage.Client at the library boundary (no GCS emulator here)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def bucket(self, name: str) -> Any:
        client = self

        class Bucket:
            def blob(self, key: str) -> FakeBlob:
                return FakeBlob(client.objects, key)

        return Bucket()

    def list_blobs(self, bucket: str, prefix: str = "", delimiter: str | None = None) -> FakeIterator:
        keys = [k for k in sorted(self.objects) if k.startswith(prefix)]
        if delimiter:
            prefixes = {
                prefix + k[len(prefix) :].split(delimiter)[0] + delimiter for k in keys if delimiter in k[len(prefix) :]
            }
            blobs = [FakeBlob(self.objects, k) for k in keys if delimiter not in k[len(prefix) :]]
            return FakeIterator(blobs, prefixes)
        return FakeIterator([FakeBlob(self.objects, k) for k in keys], set())


async def test_gcs_backend_logic(tmp_path: Path) -> None:
    client = FakeGCSClient()
    await round_trip(GCSArtifactManager("bucket", "pre", client=client), tmp_path)
    assert "pre/run-1/build.log" in client.objects
