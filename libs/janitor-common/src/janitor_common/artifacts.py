"""Run artifacts (the runner's build results): local directory, S3 or GCS.

Layout is ``<root>/<run_id>/<name>`` in every backend. Run ids and names are
checked before any I/O, and the local backend also checks the resolved path,
so neither a crafted name nor a planted symlink reaches outside the root.
Writes are atomic: a reader sees a whole file or none. The backends are
synchronous libraries; the async methods run them in threads so callers on
an event loop never block.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from .names import check_file_name, check_run_id

NameFilter = Callable[[str], bool]


class ArtifactsMissing(Exception):
    """No artifacts for this run (or no such file in it)."""

    def __init__(self, run_id: str, name: str | None = None) -> None:
        super().__init__(f"no artifacts for run {run_id}" if name is None else f"run {run_id} has no artifact {name}")
        self.run_id = run_id
        self.name = name


def _atomic_copy(write: Callable[[BinaryIO], None], dest: Path, *, durable: bool = True) -> None:
    """Write ``dest`` via a temporary file in the same directory, then rename.

    ``durable=False`` skips the fsync: for copies into scratch directories,
    where a crash loses nothing worth keeping.
    """
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with _suppress_os_error():
            os.unlink(tmp)
        raise


def _regular_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


def _copy_file(src: Path) -> Callable[[BinaryIO], None]:
    def write(f: BinaryIO) -> None:
        with open(src, "rb") as fsrc:
            shutil.copyfileobj(fsrc, f, 1 << 20)

    return write


class _suppress_os_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], OSError)  # type: ignore[arg-type]


class ArtifactManager(ABC):
    """Async facade; subclasses implement the blocking ``_*`` methods."""

    async def store(self, run_id: str, source_dir: Path, names: list[str] | None = None) -> list[str]:
        """Store files of ``source_dir`` (all regular files, or ``names``) for a run."""
        check_run_id(run_id)
        if names is None:
            names = await asyncio.to_thread(_regular_files, source_dir)
        for n in names:
            check_file_name(n)
        await asyncio.to_thread(self._store, run_id, source_dir, names)
        return names

    async def retrieve(self, run_id: str, dest: Path, filter: NameFilter | None = None) -> list[str]:
        """Copy a run's artifacts (those ``filter`` accepts) into ``dest``; returns their names."""
        check_run_id(run_id)
        names = [n for n in await self.list_names(run_id) if filter is None or filter(n)]
        await asyncio.to_thread(dest.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(self._retrieve, run_id, dest, names)
        return names

    async def get(self, run_id: str, name: str) -> bytes:
        check_run_id(run_id)
        check_file_name(name)
        return await asyncio.to_thread(self._get, run_id, name)

    async def list_names(self, run_id: str) -> list[str]:
        check_run_id(run_id)
        names = await asyncio.to_thread(self._list_names, run_id)
        if not names:
            raise ArtifactsMissing(run_id)
        return sorted(names)

    @abstractmethod
    def _store(self, run_id: str, source_dir: Path, names: list[str]) -> None: ...

    @abstractmethod
    def _retrieve(self, run_id: str, dest: Path, names: list[str]) -> None: ...

    @abstractmethod
    def _get(self, run_id: str, name: str) -> bytes: ...

    @abstractmethod
    def _list_names(self, run_id: str) -> list[str]: ...


class LocalArtifactManager(ArtifactManager):
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()

    def __repr__(self) -> str:
        return f"LocalArtifactManager({str(self.root)!r})"

    def _inside(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        # A symlink planted in the store must not lead outside it.
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise ValueError(f"path escapes the artifact root: {'/'.join(parts)}")
        return path

    def _store(self, run_id: str, source_dir: Path, names: list[str]) -> None:
        run_dir = self._inside(run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            _atomic_copy(_copy_file(source_dir / name), self._inside(run_id, name))

    def _retrieve(self, run_id: str, dest: Path, names: list[str]) -> None:
        for name in names:
            _atomic_copy(_copy_file(self._inside(run_id, name)), dest / name, durable=False)

    def _get(self, run_id: str, name: str) -> bytes:
        path = self._inside(run_id, name)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise ArtifactsMissing(run_id, name) from None

    def _list_names(self, run_id: str) -> list[str]:
        run_dir = self._inside(run_id)
        try:
            return [
                e.name for e in os.scandir(run_dir) if e.is_file(follow_symlinks=False) and not e.name.startswith(".")
            ]
        except (FileNotFoundError, NotADirectoryError):
            return []


class S3ArtifactManager(ArtifactManager):
    """``s3://bucket/prefix``; endpoint and credentials come from boto3's usual
    environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...), so any
    S3-compatible store works."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client if client is not None else boto3.client("s3")

    def __repr__(self) -> str:
        return f"S3ArtifactManager('s3://{self.bucket}/{self.prefix}')"

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _store(self, run_id: str, source_dir: Path, names: list[str]) -> None:
        for name in names:
            self.client.upload_file(str(source_dir / name), self.bucket, self._key(run_id, name))

    def _retrieve(self, run_id: str, dest: Path, names: list[str]) -> None:
        for name in names:
            key = self._key(run_id, name)

            def write(f: BinaryIO, key: str = key) -> None:
                self.client.download_fileobj(self.bucket, key, f)

            _atomic_copy(write, dest / name, durable=False)

    def _get(self, run_id: str, name: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(run_id, name))
        except self.client.exceptions.NoSuchKey:
            raise ArtifactsMissing(run_id, name) from None
        return bytes(response["Body"].read())

    def _list_names(self, run_id: str) -> list[str]:
        prefix = self._key(run_id) + "/"
        names = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                rest = obj["Key"][len(prefix) :]
                if rest and "/" not in rest:
                    names.append(rest)
        return names


class GCSArtifactManager(ArtifactManager):
    """``gs://bucket/prefix`` via google-cloud-storage (honours ``STORAGE_EMULATOR_HOST``)."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        if client is None:
            from google.cloud import storage

            client = storage.Client()
        self.client = client
        self.bucket = client.bucket(bucket)
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")

    def __repr__(self) -> str:
        return f"GCSArtifactManager('gs://{self.bucket_name}/{self.prefix}')"

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _store(self, run_id: str, source_dir: Path, names: list[str]) -> None:
        for name in names:
            self.bucket.blob(self._key(run_id, name)).upload_from_filename(str(source_dir / name))

    def _retrieve(self, run_id: str, dest: Path, names: list[str]) -> None:
        for name in names:
            blob = self.bucket.blob(self._key(run_id, name))

            def write(f: BinaryIO, blob: Any = blob) -> None:
                blob.download_to_file(f)

            _atomic_copy(write, dest / name, durable=False)

    def _get(self, run_id: str, name: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return bytes(self.bucket.blob(self._key(run_id, name)).download_as_bytes())
        except NotFound:
            raise ArtifactsMissing(run_id, name) from None

    def _list_names(self, run_id: str) -> list[str]:
        prefix = self._key(run_id) + "/"
        names = []
        for blob in self.client.list_blobs(self.bucket_name, prefix=prefix):
            rest = blob.name[len(prefix) :]
            if rest and "/" not in rest:
                names.append(rest)
        return names


def get_artifact_manager(location: str) -> ArtifactManager:
    """The backend for a location: a directory, ``s3://bucket/prefix`` or ``gs://bucket/prefix``."""
    parts = urlsplit(location)
    if parts.scheme == "s3":
        return S3ArtifactManager(parts.netloc, parts.path)
    if parts.scheme == "gs":
        return GCSArtifactManager(parts.netloc, parts.path)
    if parts.scheme in ("", "file"):
        return LocalArtifactManager(Path(parts.path if parts.scheme else location))
    raise ValueError(f"unsupported artifact location: {location}")
