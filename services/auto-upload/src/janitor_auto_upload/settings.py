"""auto-upload settings (on top of the common ones)."""

from __future__ import annotations

from pathlib import Path

from janitor_common.config import CommonSettings


class AutoUploadSettings(CommonSettings):
    port: int = 9933
    dput_host: str | None = None
    dput_config: Path | None = None
    debsign_keyid: str | None = None
    # A secret key file imported into GNUPGHOME at start (a mounted secret);
    # its key signs unless debsign_keyid names another.
    signing_key: Path | None = None
    # Only builds for these distributions (all when empty).
    distribution: list[str] = []
    source_only: bool = False
    # Per-run work directories survive restarts: dput's .upload logs in them
    # are how an upload finished just before a kill is recognised. Shared by
    # replicas; a run's directory is removed once all its uploads are settled.
    state_dir: Path = Path("/var/lib/janitor-auto-upload")
    upload_concurrency: int = 1
    # A claim's lease, renewed every third of it while the upload runs: a
    # crashed holder's uploads are taken up again within this long.
    lease_seconds: float = 30.0
    max_attempts: int = 5
    # Transient failures wait retry_base_seconds * 2**(attempt - 1), at most 300 s.
    retry_base_seconds: float = 2.0
    tool_timeout: float = 300.0
    catchup_interval: float = 300.0
    catchup_horizon_days: int = 14
