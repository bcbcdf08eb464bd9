"""Cached results and renderings, on the artifact backends.

A directory by default, or ``s3://``/``gs://`` so replicas share one cache.
Each (tool, old run, new run) is one entry holding the raw result and its
renderings (per content type, filter and stylesheet). Writes are atomic in
every backend; an entry that cannot be read back as what it should be is
treated as missing and recomputed, never served.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from janitor_common.artifacts import ArtifactManager, ArtifactsMissing, get_artifact_manager

T = TypeVar("T")
logger = logging.getLogger(__name__)


def entry_id(tool: str, old_id: str, new_id: str) -> str:
    return f"{tool}_{old_id}_{new_id}"


def rendering_name(media_type: str, filtered: bool, css_url: str | None) -> str:
    kind = media_type.replace("/", "-")
    css = hashlib.sha256(css_url.encode()).hexdigest()[:16] if css_url else "nocss"
    return f"render-{kind}-{'filtered' if filtered else 'full'}-{css}"


class DiffCache:
    def __init__(self, location: str) -> None:
        self.location = location
        self.store: ArtifactManager = get_artifact_manager(location)
        self._inflight: dict[tuple[str, str], asyncio.Future[bytes]] = {}
        # Entries this process has read or written: they exist (the cache only grows).
        self._seen: set[tuple[str, str]] = set()

    def known(self, entry: str, name: str) -> bool:
        return (entry, name) in self._seen

    async def get(self, entry: str, name: str) -> bytes | None:
        try:
            data = await self.store.get(entry, name)
        except ArtifactsMissing:
            return None
        except OSError as e:
            # Unreadable is as good as missing: recompute it, never fail on it.
            logger.warning("cache entry %s/%s unreadable (%s); recomputing", entry, name, e)
            return None
        self._seen.add((entry, name))
        return data

    async def put(self, entry: str, name: str, data: bytes) -> None:
        with tempfile.TemporaryDirectory(prefix="differ-cache-") as tmp:
            await asyncio.to_thread(Path(tmp, name).write_bytes, data)
            await self.store.store(entry, Path(tmp), [name])
        self._seen.add((entry, name))

    async def get_or_compute(
        self,
        entry: str,
        name: str,
        compute: Callable[[], Awaitable[bytes]],
        valid: Callable[[bytes], bool] = lambda data: True,
    ) -> tuple[bytes, bool]:
        """The cached bytes (and True), or computed once however many ask at the same time."""
        cached = await self.get(entry, name)
        if cached is not None and valid(cached):
            return cached, True
        key = (entry, name)
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending), False
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            data = await compute()
            await self.put(entry, name, data)
            future.set_result(data)
            return data, False
        except asyncio.CancelledError:
            future.cancel()  # waiters see the cancellation; set_exception refuses it
            raise
        except Exception as e:
            future.set_exception(e)
            future.exception()  # a waiter may not exist; mark it retrieved
            raise
        finally:
            del self._inflight[key]
