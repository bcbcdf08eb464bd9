"""bzr-store settings (on top of the common ones)."""

from __future__ import annotations

from pathlib import Path

from janitor_common.config import CommonSettings


class BzrStoreSettings(CommonSettings):
    vcs_path: Path
    port: int = 9929
    public_port: int = 9930
    # Largest smart request body accepted (a push of a big history is one request).
    client_max_size: int = 2 << 30
    # Threads running Breezy requests, per interface.
    smart_threads: int = 32
    # Seconds a diff may take before it is killed (504).
    diff_timeout: float = 60.0
