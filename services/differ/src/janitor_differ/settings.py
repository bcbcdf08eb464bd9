"""differ settings (on top of the common ones)."""

from __future__ import annotations

from pydantic import field_validator

from janitor_common.config import CommonSettings


class DifferSettings(CommonSettings):
    port: int = 9920
    # Where results are cached: a directory, s3://BUCKET/PREFIX or gs://BUCKET/PREFIX.
    cache_path: str = "differ-cache"
    # Also write raw results in the platform's differ's layout (always read from it).
    platform_cache_layout: bool = False
    task_memory_limit: int = 1500  # MB of address space per diff subprocess
    task_timeout: float = 60.0  # seconds per diff subprocess
    diffoscope_command: str = "diffoscope"
    # Background (precache) diffs at once, and how many may wait.
    precache_concurrency: int = 1
    precache_queue_size: int = 1000

    @field_validator("task_memory_limit", "precache_concurrency", "precache_queue_size")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be at least 1")
        return v

    @field_validator("task_timeout")
    @classmethod
    def _positive_float(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be positive")
        return v
