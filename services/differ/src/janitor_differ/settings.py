"""differ settings (on top of the common ones)."""

from __future__ import annotations

from janitor_common.config import CommonSettings


class DifferSettings(CommonSettings):
    port: int = 9920
    cache_path: str = "differ-cache"
    task_memory_limit: int = 1500  # MB of address space per diff subprocess
    task_timeout: float = 60.0  # seconds per diff subprocess
    diffoscope_command: str = "diffoscope"
