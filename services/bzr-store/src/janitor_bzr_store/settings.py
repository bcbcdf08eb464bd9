"""bzr-store settings (on top of the common ones)."""

from __future__ import annotations

from pathlib import Path

from janitor_common.config import CommonSettings


class BzrStoreSettings(CommonSettings):
    vcs_path: Path
    port: int = 9929
    public_port: int = 9930
    client_max_size: int = 1 << 30
