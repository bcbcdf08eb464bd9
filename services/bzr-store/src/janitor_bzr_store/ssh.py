"""``bzr+ssh://`` on ``--ssh-port``: an SSH server inside bzr-store that runs one command, and interprets it.

Breezy's client logs in and asks to run ``bzr serve --inet --directory=/
[--allow-writes]``; nothing is ever executed: that exact command (``brz``
for ``bzr`` allowed) starts the smart protocol on the channel, served by
``stream.serve_stream`` as ``bzr://`` is, with the worker's rights. Any
other command, a shell, a subsystem, port, agent or X11 forwarding is
refused.

Workers log in with their password (the same ``crypt()`` check and brake
as over HTTP) or a public key added with ``janitor-db add-worker-key``.
Anonymous logins (user ``anonymous``, no credentials) are read-only, and
only when ``ssh_anonymous`` is on. The host key is made on first start at
``ssh_host_key`` (a mounted secret in a deployment), never inside the
store, whose files readers can fetch; its fingerprint is logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncssh

from janitor_common.sshkeys import parse_public_key

from .access import Grants
from .stream import StreamAccess, serve_stream

if TYPE_CHECKING:
    from .context import BzrContext

logger = logging.getLogger(__name__)
INTERFACE = "ssh"
ANONYMOUS_USER = "anonymous"
SERVE = ["serve", "--inet", "--directory=/"]
# Seconds from the connection to a completed login.
LOGIN_TIMEOUT = 30.0


def host_key(path: Path, vcs_path: Path) -> asyncssh.SSHKey:
    """The host key at ``path``, made (Ed25519, mode 0600) when there is none; never inside the store."""
    resolved = path.absolute().resolve()
    store = vcs_path.absolute().resolve()
    if resolved == store or store in resolved.parents:
        raise ValueError(f"ssh_host_key {path} is inside the store, whose files anyone may read")
    if path.exists():
        try:
            return asyncssh.read_private_key(str(path))
        except (OSError, asyncssh.KeyImportError) as e:
            raise ValueError(f"ssh_host_key {path}: cannot read a private key there ({e})") from None
    key = asyncssh.generate_private_key("ssh-ed25519")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.export_private_key())
    logger.info("made a new SSH host key at %s", path)
    return key


def command_rights(command: str | None) -> bool | None:
    """Whether ``command`` is Breezy's serve command with writes asked for; None when it is anything else."""
    if not command:
        return None
    try:
        argv = shlex.split(command)
    except ValueError:
        return None
    if not argv or os.path.basename(argv[0]) not in ("bzr", "brz"):
        return None
    rest = argv[1:]
    if rest == [*SERVE, "--allow-writes"]:
        return True
    if rest == SERVE:
        return False
    return None


def acknowledge_at_once(conn: asyncssh.SSHServerConnection) -> None:
    """Make the kernel acknowledge each segment from ``conn``'s client at once, not after 40 ms.

    OpenSSH's client leaves Nagle's algorithm on for a command without a
    terminal, so a small packet sent while an earlier one is unacknowledged
    waits for the acknowledgement, which Linux delays by up to 40 ms when it
    has nothing to send back (measured: the login's service request waited
    43 ms behind the client's NEWKEYS; a connection took 72 ms instead of
    28). ``TCP_QUICKACK`` is not sticky, so it is set again each time data is
    read; asyncssh has no hook for that, hence the wrapped ``data_received``.
    """
    quickack = getattr(socket, "TCP_QUICKACK", None)
    sock = conn.get_extra_info("socket")
    if quickack is None or sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    received = conn.data_received

    def data_received(data: bytes, datatype: Any = None) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        except OSError:
            pass  # the connection is going; asyncssh finds out on its own
        received(data, datatype)

    conn.data_received = data_received  # type: ignore[method-assign]


class Server(asyncssh.SSHServer):
    """One SSH connection: who logged in, and with what rights."""

    def __init__(self, ctx: BzrContext) -> None:
        self.ctx = ctx
        self.address = "-"
        self.counted = False
        self.conn: asyncssh.SSHServerConnection | None = None
        # Channels running the serve command; with none for stream_idle_timeout
        # the connection is closed: a logged-in client that opens nothing
        # would otherwise keep its slot of the per-address limit for ever.
        self.channels = 0
        self.idle_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self.idle_timer = asyncio.get_running_loop().call_later(
            self.ctx.settings.stream_idle_timeout, self._close_if_idle
        )

    def _disarm(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def _close_if_idle(self) -> None:
        if self.channels == 0 and self.conn is not None:
            logger.info("ssh from %s: no command for %gs; closed", self.address, self.ctx.settings.stream_idle_timeout)
            self.conn.close()

    def channel_started(self) -> None:
        self.channels += 1
        self._disarm()

    def channel_ended(self) -> None:
        self.channels -= 1
        if self.channels == 0:
            self._arm()

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername")
        self.address = str(peer[0]) if peer else "-"
        limits = self.ctx.stream_limits
        if not limits.take(self.address):
            logger.warning("ssh from %s refused: %d connections from there already", self.address, limits.limit)
            self.ctx.metrics.requests.labels(INTERFACE, "other", "busy").inc()
            conn.close()
            return
        self.counted = True
        acknowledge_at_once(conn)
        conn.set_extra_info(janitor_server=self)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.counted:
            self.ctx.stream_limits.give_back(self.address)
            self.counted = False

    def _grant(self, worker: str | None, grants: Grants) -> None:
        assert self.conn is not None
        self.conn.set_extra_info(janitor_worker=worker, janitor_grants=grants)

    def begin_auth(self, username: str) -> bool:
        if username == ANONYMOUS_USER and self.ctx.settings.ssh_anonymous:
            self._grant(None, Grants())
            return False  # no credentials needed: read-only
        return True

    def password_auth_supported(self) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def _braked(self) -> bool:
        wait = self.ctx.brake.retry_after(self.address)
        if wait is not None:
            logger.info("ssh from %s: braked for %ds after failed logins", self.address, wait)
        return wait is not None

    def _failed(self, username: str, how: str) -> None:
        if self.ctx.brake.failed(self.address):
            logger.warning("%s: %d failed authentications; braked", self.address, self.ctx.brake.limit)
        logger.info("ssh login refused: worker=%r client=%s method=%s", username, self.address, how)

    def _logged_in(self, username: str, how: str, grants: Grants | None) -> bool:
        """Whether the login succeeded (``grants`` found); a failure counts towards the brake."""
        if grants is None:
            self._failed(username, how)
            return False
        self._grant(username, grants)
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        if self._braked():
            return False
        return self._logged_in(
            username, "password", await self.ctx.credentials.check(self.ctx.engine, username, password)
        )

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if self._braked():
            return False
        # Asked twice per login (would this key do, then the signed attempt): cached after the first.
        offered = parse_public_key(key.export_public_key("openssh").decode()).fingerprint
        return self._logged_in(
            username, "publickey", await self.ctx.credentials.check_key(self.ctx.engine, username, offered)
        )


async def handle_process(ctx: BzrContext, process: asyncssh.SSHServerProcess[bytes]) -> None:
    """A channel's command: Breezy's serve command is interpreted; anything else is refused."""
    worker: str | None = process.get_extra_info("janitor_worker")
    grants: Grants = process.get_extra_info("janitor_grants") or Grants()
    peer = process.get_extra_info("peername")
    address = str(peer[0]) if peer else "-"
    writes_asked = command_rights(process.command)
    if process.subsystem or writes_asked is None:
        shown = (process.command or process.subsystem or "a shell")[:200]
        logger.info("ssh %s from %s: refused %r", worker or ANONYMOUS_USER, address, shown)
        process.stderr.write(b"bzr-store: only 'bzr serve --inet --directory=/ [--allow-writes]' is served here\n")
        process.exit(1)
        return
    server: Server | None = process.get_extra_info("janitor_server")
    access = StreamAccess(
        interface=INTERFACE, writable=writes_asked and worker is not None, worker=worker, grants=grants
    )
    logger.debug(
        "ssh %s from %s: serving (%s)", worker or ANONYMOUS_USER, address, "writes" if access.writable else "reads"
    )
    if server is not None:
        server.channel_started()
    try:
        await serve_stream(ctx, process.stdin, process.stdout, access, address)
    finally:
        if server is not None:
            server.channel_ended()
        process.exit(0)


async def start_ssh_server(ctx: BzrContext, host: str, port: int, key_path: Path) -> Any:
    key = host_key(key_path, ctx.settings.vcs_path)
    logger.info("serving bzr+ssh on %s:%d; host key %s", host, port, key.get_fingerprint("sha256"))

    async def process_factory(process: asyncssh.SSHServerProcess[bytes]) -> None:
        await handle_process(ctx, process)

    return await asyncssh.create_server(
        lambda: Server(ctx),
        host,
        port,
        server_host_keys=[key],
        process_factory=process_factory,
        encoding=None,
        allow_scp=False,
        allow_pty=False,
        agent_forwarding=False,
        x11_forwarding=False,
        login_timeout=LOGIN_TIMEOUT,
        keepalive_interval=30,
        keepalive_count_max=4,
    )
