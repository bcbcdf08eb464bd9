"""The least an asyncssh server can do for bzr+ssh: `brz serve` behind an SSH relay, the floor of (e) in bzr_store.py.

Any key is accepted, and every session's bytes are relayed, unread, to a
`brz serve` listening on TARGET_PORT (whatever command the client asks to
run), with the same TCP_QUICKACK fix bzr-store's SSH server has. No
database, no grants, no jail, no audit, no worker pool: what a push costs
through this relay beyond `brz serve` alone is the price of SSH itself (the
client's `ssh` process, the key exchange, encryption, asyncssh), which no
server built on asyncssh avoids.

Usage: python bench/bzr_ssh_floor.py HOST_KEY PORT TARGET_PORT
"""

from __future__ import annotations

import asyncio
import sys

import asyncssh

from janitor_bzr_store.ssh import acknowledge_at_once

CHUNK = 64 * 1024


class AnyKey(asyncssh.SSHServer):
    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        acknowledge_at_once(conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return True


async def relay(process: asyncssh.SSHServerProcess[bytes], target_port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", target_port)

    async def upstream() -> None:
        while data := await process.stdin.read(CHUNK):
            writer.write(data)
            await writer.drain()
        writer.write_eof()

    async def downstream() -> None:
        while data := await reader.read(CHUNK):
            process.stdout.write(data)
            await process.stdout.drain()

    try:
        await asyncio.gather(upstream(), downstream())
    except (ConnectionError, asyncssh.Error):
        pass
    finally:
        writer.close()
        process.exit(0)


async def main(host_key: str, port: int, target_port: int) -> None:
    async def session(process: asyncssh.SSHServerProcess[bytes]) -> None:
        await relay(process, target_port)

    await asyncssh.create_server(
        AnyKey,
        "127.0.0.1",
        port,
        server_host_keys=[asyncssh.read_private_key(host_key)],
        process_factory=session,
        encoding=None,
    )
    await asyncio.Event().wait()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
