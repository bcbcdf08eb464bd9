"""bzr-store settings (on top of the common ones)."""

from __future__ import annotations

from pathlib import Path

from janitor_common.config import CommonSettings


class BzrStoreSettings(CommonSettings):
    vcs_path: Path
    port: int = 9929
    public_port: int = 9930
    # Each interface's own address; unset, both use listen_address (127.0.0.1
    # unless given). The admin interface has no authentication: only a
    # deployment that protects it (a private network) should widen it.
    admin_listen_address: str | None = None
    public_listen_address: str | None = None
    # bzr:// (anonymous, read-only) on this port when set; its address
    # defaults to the public interface's.
    bzr_port: int | None = None
    bzr_listen_address: str | None = None
    # bzr+ssh on this port when set (9931 by convention), its address
    # (default: the public interface's), the host key's path (made on first
    # start; required with ssh_port, and never inside vcs_path), and whether
    # the user "anonymous" may log in without credentials, read-only.
    ssh_port: int | None = None
    ssh_listen_address: str | None = None
    ssh_host_key: Path | None = None
    ssh_anonymous: bool = False
    # Seconds a stream connection (bzr://, bzr+ssh) may sit between requests, and
    # how many may be open from one client address.
    stream_idle_timeout: float = 300.0
    max_connections_per_address: int = 16
    # Largest smart request body accepted (a push of a big history is one request).
    client_max_size: int = 2 << 30
    # Threads running Breezy requests, per interface. A request holds one
    # only while it has bytes to process or a response to produce.
    smart_threads: int = 32
    # Smart requests in progress per interface; more are answered 503 with Retry-After.
    max_smart_requests: int = 256
    # Seconds without a byte of a request body (or a read of its response)
    # before the request is dropped (408, or the connection closed).
    body_idle_timeout: float = 60.0
    # Failed authentications from one client address within the window
    # that put it on the brake (429 with Retry-After, no database query)
    # for auth_block_seconds; 0 turns the brake off.
    auth_failure_limit: int = 10
    auth_failure_window: float = 60.0
    auth_block_seconds: float = 60.0
    # Seconds a diff may take before it is killed (504).
    diff_timeout: float = 60.0

    @property
    def admin_address(self) -> str:
        return self.admin_listen_address or self.listen_address

    @property
    def public_address(self) -> str:
        return self.public_listen_address or self.listen_address

    @property
    def bzr_address(self) -> str:
        return self.bzr_listen_address or self.public_address

    @property
    def ssh_address(self) -> str:
        return self.ssh_listen_address or self.public_address
