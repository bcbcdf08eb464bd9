"""auto-upload settings (on top of the common ones)."""

from __future__ import annotations

from janitor_common.config import CommonSettings


class AutoUploadSettings(CommonSettings):
    port: int = 9933
