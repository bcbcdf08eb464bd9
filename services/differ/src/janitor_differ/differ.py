"""Computing diffs of two runs: fetch, check, pair, run the tool, cache, render."""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from janitor_common.artifacts import ArtifactManager, ArtifactsMissing

from . import debdiff, diffoscope
from .cache import RAW, CacheKey, DiffCache, rendering_name
from .debs import Deb, check_debs, fetch_debs, is_binary_package, pair_debs
from .limits import Limits
from .memory_cache import BytesLRU, TTLCache
from .metrics import DifferMetrics
from .runs import RunInfo, RunUnavailable, get_run
from .settings import DifferSettings

logger = logging.getLogger(__name__)

# The first is what a client that states no preference (no Accept, */*) gets:
# what the platform's differ answers it, since the site forwards such requests.
DEBDIFF_TYPES = ["text/html", "text/plain", "text/x-diff", "text/markdown"]
DIFFOSCOPE_TYPES = ["text/markdown", "text/plain", "application/json", "text/html"]


def _valid_json(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


def _valid_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def title(old: RunInfo, new: RunInfo) -> str:
    """What a page of the pair is called: ``SOURCE OLD_VERSION → NEW_VERSION``."""
    source = old.source if old.source == new.source else f"{old.source} → {new.source}"
    return f"{source} {old.version} → {new.version}"


@dataclass
class Differ:
    settings: DifferSettings
    engine: AsyncEngine
    artifacts: ArtifactManager
    cache: DiffCache
    metrics: DifferMetrics
    # Successful runs only: a run that failed may yet be retried under the same id.
    run_memo: TTLCache[str, RunInfo] = field(default_factory=lambda: TTLCache(300.0, 10_000))
    renderings: BytesLRU[tuple[CacheKey, str]] = field(default_factory=lambda: BytesLRU(64 << 20))

    @property
    def limits(self) -> Limits:
        return Limits(self.settings.task_timeout, self.settings.task_memory_limit)

    async def run(self, run_id: str) -> RunInfo:
        info = self.run_memo.get(run_id)
        if info is None:
            info = await get_run(self.engine, run_id)
            self.run_memo.put(run_id, info)
        return info

    async def runs(self, old_id: str, new_id: str) -> tuple[RunInfo, RunInfo]:
        return await self.run(old_id), await self.run(new_id)

    async def ensure_available(self, tool: str, old: RunInfo, new: RunInfo) -> None:
        """RunUnavailable now, before anything else, for a run without binary packages.

        A pair already cached is served even if its artifacts have gone since.
        """
        key = CacheKey(tool, old.id, new.id)
        if self.cache.known(key, RAW):
            return
        if await self.cache.get(key, RAW) is not None:
            return
        for run in (old, new):
            try:
                names = await self.artifacts.list_names(run.id)
            except ArtifactsMissing:
                raise RunUnavailable(run.id, f"no artifacts for run {run.id}") from None
            if not any(is_binary_package(n) for n in names):
                raise RunUnavailable(run.id, f"run {run.id} has no binary packages")

    async def _prepare(self, old: RunInfo, new: RunInfo, tmp: Path, *, check: bool = True) -> Any:
        old_debs = await fetch_debs(self.artifacts, old.id, tmp / "old")
        new_debs = await fetch_debs(self.artifacts, new.id, tmp / "new")
        if check:
            await self._check(old, new, old_debs, new_debs)
        return pair_debs(old_debs, new_debs)

    async def _check(self, old: RunInfo, new: RunInfo, old_debs: list[Deb], new_debs: list[Deb]) -> None:
        await check_debs(old.id, old_debs, self.limits)
        await check_debs(new.id, new_debs, self.limits)

    async def _timed(self, tool: str, compute: Any) -> bytes:
        started = time.monotonic()
        try:
            result: bytes = await compute()
        except Exception as e:
            self.metrics.failures.labels(tool, type(e).__name__).inc()
            raise
        self.metrics.duration.labels(tool).observe(time.monotonic() - started)
        return result

    async def debdiff_raw(self, old: RunInfo, new: RunInfo) -> bytes:
        async def compute() -> bytes:
            # debdiff only lists contents, and fails on a package it cannot
            # read: the (slow, decompressing) package check runs only then,
            # to say which package is broken.
            with tempfile.TemporaryDirectory(prefix="differ-") as tmp:
                pairing = await self._prepare(old, new, Path(tmp), check=False)
                old_debs = [o for o, _ in pairing.pairs] + pairing.removed
                new_debs = [n for _, n in pairing.pairs] + pairing.added
                try:
                    text = await debdiff.run_debdiff(
                        [d.path for d in old_debs], [d.path for d in new_debs], self.limits
                    )
                except debdiff.DebdiffError:
                    await self._check(old, new, old_debs, new_debs)
                    raise
                return text.encode("utf-8")

        data, hit = await self.cache.get_or_compute(
            CacheKey("debdiff", old.id, new.id), RAW, lambda: self._timed("debdiff", compute), _valid_text
        )
        (self.metrics.cache_hits if hit else self.metrics.cache_misses).labels("debdiff").inc()
        return data

    async def diffoscope_raw(self, old: RunInfo, new: RunInfo) -> dict[str, Any]:
        async def compute() -> bytes:
            # The packages are checked while diffoscope runs (each check
            # decompresses a whole .deb): a failed check discards the result,
            # which diffoscope would have produced as a hexdump of the damage.
            with tempfile.TemporaryDirectory(prefix="differ-") as tmp:
                pairing = await self._prepare(old, new, Path(tmp), check=False)
                old_debs = [o for o, _ in pairing.pairs] + pairing.removed
                new_debs = [n for _, n in pairing.pairs] + pairing.added
                checking = asyncio.create_task(self._check(old, new, old_debs, new_debs))
                try:
                    result = await diffoscope.run_diffoscope(
                        self.settings.diffoscope_command, old, new, pairing, self.limits
                    )
                except asyncio.CancelledError:
                    checking.cancel()
                    raise
                except Exception:
                    await checking  # a broken package explains a failure better than the tool's error
                    raise
                await checking
                return json.dumps(result).encode()

        data, hit = await self.cache.get_or_compute(
            CacheKey("diffoscope", old.id, new.id), RAW, lambda: self._timed("diffoscope", compute), _valid_json
        )
        (self.metrics.cache_hits if hit else self.metrics.cache_misses).labels("diffoscope").inc()
        parsed: dict[str, Any] = json.loads(data)
        return parsed

    async def _rendering(
        self, tool: str, old: RunInfo, new: RunInfo, name: str, render: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        """A rendering from memory, the shared cache, or ``render`` (once, then kept in both)."""
        key = CacheKey(tool, old.id, new.id)
        cached = self.renderings.get((key, name)) or await self.cache.get(key, name)
        if cached is not None:
            self.metrics.cache_hits.labels(tool).inc()
        else:
            cached, _ = await self.cache.get_or_compute(key, name, render)
        self.renderings.put((key, name), cached)
        return cached

    async def debdiff(self, old: RunInfo, new: RunInfo, media_type: str, filtered: bool) -> bytes:
        async def render() -> bytes:
            text = (await self.debdiff_raw(old, new)).decode("utf-8")
            if filtered:
                text = debdiff.filter_boring(text, old.version, new.version)
            if media_type == "text/markdown":
                return debdiff.render_markdown(text).encode()
            if media_type == "text/html":
                return debdiff.render_html(text).encode()
            return text.encode()

        return await self._rendering("debdiff", old, new, rendering_name(media_type, filtered), render)

    async def diffoscope(
        self, old: RunInfo, new: RunInfo, media_type: str, filtered: bool, css_url: str | None
    ) -> bytes:
        """The rendering; ``css_url`` (checked by the caller) is linked into HTML as it is served.

        One HTML rendering per pair and filter, whatever stylesheets clients
        ask for: a new ``css_url`` costs no render and no cache entry.
        """

        async def render() -> bytes:
            diff = await self.diffoscope_raw(old, new)
            if filtered:
                diff = diffoscope.filter_boring(diff, old.version, new.version)
            page = await diffoscope.render(self.settings.diffoscope_command, diff, media_type, self.limits, None)
            if media_type == "text/html":
                page = diffoscope.set_title(page, f"diffoscope: {title(old, new)}")
            return page

        body = await self._rendering("diffoscope", old, new, rendering_name(media_type, filtered), render)
        if css_url and media_type == "text/html":
            body = diffoscope.link_stylesheet(body, css_url)
        return body
