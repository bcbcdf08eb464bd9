"""Cached results and renderings, on the artifact backends.

A directory by default, or ``s3://``/``gs://`` so replicas share one cache.
Each (tool, old run, new run) is one entry holding the raw result and its
renderings (per content type and filter). Writes are atomic in every
backend; an entry that cannot be read back as what it should be is treated
as missing and recomputed, never served.

Entry names must not collide, whatever the run ids contain: the platform's
``{tool}_{old}_{new}`` gives the pairs (``k_a``, ``b``) and (``k``, ``a_b``)
one entry, and so served one pair's diff for the other. Here an underscore
inside an id is doubled, so the single ``_`` between the ids is the only
one; ids without underscores (the platform's UUIDs) keep the platform's
names. Each entry also holds a ``pair`` file naming its tool and runs,
checked before anything in it is served.

The platform's differ keeps ``CACHE/debdiff/{old}_{new}`` and
``CACHE/diffoscope/{old}_{new}.json``: a raw result missing here is looked
for there, so a cache volume the platform's differ filled is reused as it
is (only for ids without underscores, whose names there cannot collide),
and with ``platform_layout`` raw results are also written there, so the
platform's differ can be swapped back in.

The cache is an optimisation: a failed write (full or read-only disk, an
S3 error) is logged once per kind of failure and counted, and the computed
answer is served all the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from prometheus_client import Counter

from janitor_common.artifacts import ArtifactManager, ArtifactsMissing, get_artifact_manager

T = TypeVar("T")
logger = logging.getLogger(__name__)

PAIR = "pair"
RAW = "raw"
# Where the platform's differ keeps a tool's raw result: directory, file name pattern.
PLATFORM_LAYOUT = {"debdiff": ("debdiff", "{}_{}"), "diffoscope": ("diffoscope", "{}_{}.json")}
# Longer entry names (ids near their 255-character limit) are hashed.
MAX_ENTRY_NAME = 200


@dataclass(frozen=True)
class CacheKey:
    tool: str
    old_id: str
    new_id: str

    @property
    def entry(self) -> str:
        name = f"{self.tool}_{_escape(self.old_id)}_{_escape(self.new_id)}"
        if len(name) <= MAX_ENTRY_NAME:
            return name
        # No separator after the tool: no escaped pair name looks like this.
        return f"{self.tool}_sha256-{hashlib.sha256(self.pair_bytes()).hexdigest()}"

    def pair_bytes(self) -> bytes:
        return json.dumps({"tool": self.tool, "old": self.old_id, "new": self.new_id}, sort_keys=True).encode()

    @property
    def legacy_safe(self) -> bool:
        """An entry written before ``pair`` files existed is this pair's own (no id had an underscore)."""
        return "_" not in self.old_id and "_" not in self.new_id and len(self.entry) <= MAX_ENTRY_NAME

    @property
    def platform_place(self) -> tuple[str, str] | None:
        """(directory, file name) of this pair's raw result in the platform's layout, if it has one."""
        layout = PLATFORM_LAYOUT.get(self.tool)
        if layout is None or not self.legacy_safe:
            return None
        return layout[0], layout[1].format(self.old_id, self.new_id)


def _escape(run_id: str) -> str:
    return run_id.replace("_", "__")


def rendering_name(media_type: str, filtered: bool) -> str:
    kind = media_type.replace("/", "-")
    return f"render-{kind}-{'filtered' if filtered else 'full'}"


class DiffCache:
    def __init__(self, location: str, write_failures: Counter | None = None, *, platform_layout: bool = False) -> None:
        self.location = location
        self.platform_layout = platform_layout
        self.store: ArtifactManager = get_artifact_manager(location)
        self.write_failures = write_failures
        self._inflight: dict[tuple[CacheKey, str], asyncio.Future[bytes]] = {}
        # Entries this process has read or written: they exist (the cache only grows).
        self._seen: set[tuple[CacheKey, str]] = set()
        # Entries whose ``pair`` file this process has checked (or written).
        self._verified: set[CacheKey] = set()
        self._failures_logged: set[str] = set()

    def known(self, key: CacheKey, name: str) -> bool:
        return (key, name) in self._seen

    async def _read(self, key: CacheKey, name: str) -> bytes | None:
        try:
            return await self.store.get(key.entry, name)
        except ArtifactsMissing:
            return None
        except OSError as e:
            # Unreadable is as good as missing: recompute it, never fail on it.
            logger.warning("cache entry %s/%s unreadable (%s); recomputing", key.entry, name, e)
            return None

    async def _verify(self, key: CacheKey) -> bool:
        if key in self._verified:
            return True
        pair = await self._read(key, PAIR)
        if pair is None:
            ok = key.legacy_safe
        else:
            ok = pair == key.pair_bytes()
            if not ok:
                logger.error("cache entry %s belongs to another pair (%r); not served", key.entry, pair[:200])
        if ok:
            self._verified.add(key)
        return ok

    async def get(self, key: CacheKey, name: str) -> bytes | None:
        data = await self._read(key, name)
        if data is None and name == RAW:
            data = await self._read_platform(key)
        elif data is not None and not await self._verify(key):
            return None
        if data is None:
            return None
        self._seen.add((key, name))
        return data

    async def _read_platform(self, key: CacheKey) -> bytes | None:
        place = key.platform_place
        if place is None:
            return None
        try:
            return await self.store.get(*place)
        except ArtifactsMissing:
            return None
        except OSError as e:
            logger.warning("platform cache file %s/%s unreadable (%s); recomputing", *place, e)
            return None

    async def put(self, key: CacheKey, name: str, data: bytes) -> None:
        """Store ``data``; raises what the backend raises (see ``put_quietly``)."""
        names = [name]
        if key not in self._verified:
            existing = await self._read(key, PAIR)
            if existing is not None and existing != key.pair_bytes():
                raise RuntimeError(f"cache entry {key.entry} belongs to another pair")
            if existing is None:
                # The pair goes in first: an entry never has data without it.
                names = [PAIR, name]
        with tempfile.TemporaryDirectory(prefix="differ-cache-") as tmp:
            if PAIR in names:
                await asyncio.to_thread(Path(tmp, PAIR).write_bytes, key.pair_bytes())
            await asyncio.to_thread(Path(tmp, name).write_bytes, data)
            await self.store.store(key.entry, Path(tmp), names)
        self._verified.add(key)
        self._seen.add((key, name))
        place = key.platform_place
        if name == RAW and self.platform_layout and place is not None:
            with tempfile.TemporaryDirectory(prefix="differ-cache-") as tmp:
                await asyncio.to_thread(Path(tmp, place[1]).write_bytes, data)
                await self.store.store(place[0], Path(tmp), [place[1]])

    async def put_quietly(self, key: CacheKey, name: str, data: bytes) -> bool:
        """``put``, but a failure is logged (once per kind) and counted, not raised."""
        try:
            await self.put(key, name, data)
            return True
        except Exception as e:
            kind = f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}"
            if self.write_failures is not None:
                self.write_failures.inc()
            if kind not in self._failures_logged:
                self._failures_logged.add(kind)
                logger.warning("cannot write to the cache at %s (%s); serving uncached", self.location, kind)
            else:
                logger.debug("cache write of %s/%s failed: %s", key.entry, name, kind)
            return False

    async def get_or_compute(
        self,
        key: CacheKey,
        name: str,
        compute: Callable[[], Awaitable[bytes]],
        valid: Callable[[bytes], bool] = lambda data: True,
    ) -> tuple[bytes, bool]:
        """The cached bytes (and True), or computed once however many ask at the same time."""
        cached = await self.get(key, name)
        if cached is not None and valid(cached):
            return cached, True
        inflight = (key, name)
        pending = self._inflight.get(inflight)
        if pending is not None:
            return await asyncio.shield(pending), False
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[inflight] = future
        try:
            data = await compute()
            await self.put_quietly(key, name, data)
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
            del self._inflight[inflight]
