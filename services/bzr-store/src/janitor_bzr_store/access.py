"""Who may do what on the public interface.

Breezy's HTTP client sends Basic credentials only after a 401 challenge,
and the smart protocol carries no authentication of its own. So anonymous
requests are served read-only, and a request whose verb writes is answered
with a 401 challenge *before it runs*: a worker whose URL holds credentials
then retries with them, while an anonymous client gets an authentication
error and nothing is written. Reads never challenge, so ``brz branch`` needs
no credentials and never prompts.

A worker may be limited by grants (``janitor-db grant``): codebase and
campaign glob patterns, any one of which must match where it writes. No
grant at all means anywhere, as before grants existed. Repeated failed
authentications from one address are braked (``AuthBrake``) before any
database query.
"""

from __future__ import annotations

import collections
import hashlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from janitor_common.auth import check_worker
from janitor_common.db.models import Codebase, WorkerGrant, WorkerKey

# bcrypt is deliberately slow (~5 ms) and brz sends dozens of requests per
# push; a verified (worker, password digest) pair, or (worker, SSH key), is
# trusted for a minute, or until janitor-db announces a change to the
# worker (invalidation.py).
CREDENTIALS_TTL = 60.0
CODEBASE_TTL = 60.0


@dataclass(frozen=True)
class Grants:
    """Where a worker may write: (codebase pattern, campaign pattern) pairs; none at all means anywhere."""

    patterns: tuple[tuple[str, str], ...] = ()

    def allows(self, codebase: str, campaign: str | None) -> bool:
        """Whether a write at ``codebase[/campaign]`` is allowed (a codebase alone: any campaign of it)."""
        if not self.patterns:
            return True
        return any(
            fnmatchcase(codebase, cp) and (campaign is None or fnmatchcase(campaign, gp)) for cp, gp in self.patterns
        )

    def write_policy(self, store_root: str, codebase: str) -> Callable[[str], bool]:
        """Where one write request on ``codebase`` may write: inside it, and within the granted campaigns there.

        A request names paths relative to the URL it was posted to (or, on
        a stream, absolute ones), so a worker granted one campaign could
        otherwise write another's branch of the same codebase, or another
        codebase. The codebase's shared repository (``.bzr/`` at its root)
        is written by every push.
        """
        campaigns = [gp for cp, gp in self.patterns if fnmatchcase(codebase, cp)]
        limited = bool(self.patterns) and "*" not in campaigns

        def may_write(local_path: str) -> bool:
            parts = os.path.relpath(local_path, store_root).split(os.sep)
            if parts[0] != codebase:
                return False
            if not limited:
                return True
            return len(parts) > 1 and (parts[1] == ".bzr" or any(fnmatchcase(parts[1], gp) for gp in campaigns))

        return may_write

    def describe(self) -> str:
        return ", ".join(f"{cp}/{gp}" for cp, gp in self.patterns) or "anywhere"


ANYWHERE = Grants()


async def load_grants(conn: AsyncConnection, worker: str) -> Grants:
    rows = await conn.execute(
        select(WorkerGrant.codebase, WorkerGrant.campaign)
        .where(WorkerGrant.worker == worker)
        .order_by(WorkerGrant.codebase, WorkerGrant.campaign)
    )
    return Grants(tuple((cp, gp) for cp, gp in rows))


@dataclass
class CredentialCache:
    """Verified logins: (worker, password digest) or (worker, key fingerprint) → grants, for ``ttl`` seconds.

    An SSH login by key is a query too (is the key the worker's, and its
    grants); cached like a password, it costs a connection nothing after
    the first, and ``forget`` drops both kinds when janitor-db announces a
    change to the worker (a key removed, a grant changed).
    """

    ttl: float = CREDENTIALS_TTL
    _valid: dict[tuple[str, str, bytes], tuple[float, Grants]] = field(default_factory=dict)

    @staticmethod
    def _key(name: str, password: str) -> tuple[str, str, bytes]:
        return "password", name, hashlib.sha256(password.encode()).digest()

    def _get(self, key: tuple[str, str, bytes]) -> Grants | None:
        entry = self._valid.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        return None

    def _put(self, key: tuple[str, str, bytes], grants: Grants) -> None:
        if len(self._valid) > 10_000:
            self._valid.clear()
        self._valid[key] = (time.monotonic() + self.ttl, grants)

    def cached(self, name: str, password: str) -> Grants | None:
        """The worker's grants if these credentials were verified within the TTL, without a query."""
        return self._get(self._key(name, password))

    async def check(self, engine: AsyncEngine, name: str, password: str) -> Grants | None:
        """The worker's grants, or None for wrong credentials."""
        grants = self.cached(name, password)
        if grants is not None:
            return grants
        key = self._key(name, password)
        if not await check_worker(engine, name, password):
            self._valid.pop(key, None)
            return None
        async with engine.connect() as conn:
            grants = await load_grants(conn, name)
        self._put(key, grants)
        return grants

    async def check_key(self, engine: AsyncEngine, name: str, fingerprint: str) -> Grants | None:
        """The worker's grants if the public key with ``fingerprint`` is one of its keys, or None."""
        key = ("key", name, fingerprint.encode())
        grants = self._get(key)
        if grants is not None:
            return grants
        async with engine.connect() as conn:
            known = (
                await conn.execute(
                    select(WorkerKey.fingerprint).where(WorkerKey.worker == name, WorkerKey.fingerprint == fingerprint)
                )
            ).first()
            if known is None:
                self._valid.pop(key, None)
                return None
            grants = await load_grants(conn, name)
        self._put(key, grants)
        return grants

    def forget(self, name: str) -> None:
        """Drop what is cached for worker ``name`` (it was removed or changed, or its keys or grants were)."""
        for key in [k for k in self._valid if k[1] == name]:
            del self._valid[key]

    def forget_all(self) -> None:
        self._valid.clear()


@dataclass
class AuthBrake:
    """After ``limit`` failed authentications from one address within ``window`` seconds, refuse it for ``block``.

    Kept in memory per process and checked before any database query, so a
    guessing client costs neither bcrypt work nor connections. Verified
    credentials (in the cache) pass even from a braked address.
    """

    limit: int = 10
    window: float = 60.0
    block: float = 60.0
    _failures: dict[str, collections.deque[float]] = field(default_factory=dict)
    _blocked: dict[str, float] = field(default_factory=dict)

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None when it may now."""
        until = self._blocked.get(client)
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            del self._blocked[client]
            return None
        return max(1, math.ceil(left))

    def failed(self, client: str) -> bool:
        """Count a failure; True when it puts ``client`` on the brake."""
        if self.limit <= 0:
            return False
        now = time.monotonic()
        times = self._failures.setdefault(client, collections.deque())
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) < self.limit:
            if len(self._failures) > 100_000:  # many addresses: keep memory bounded
                self._failures = {client: times}
            return False
        del self._failures[client]
        self._blocked[client] = now + self.block
        if len(self._blocked) > 100_000:
            self._blocked = {c: t for c, t in self._blocked.items() if t > now}
        return True


@dataclass
class CodebaseCache:
    """Known codebase names; only positive answers are cached."""

    ttl: float = CODEBASE_TTL
    _known: dict[str, float] = field(default_factory=dict)

    async def exists(self, engine: AsyncEngine, name: str) -> bool:
        now = time.monotonic()
        if self._known.get(name, 0.0) > now:
            return True
        async with engine.connect() as conn:
            row = (await conn.execute(select(Codebase.name).where(Codebase.name == name))).first()
        if row is None:
            return False
        self._known[name] = now + self.ttl
        return True


class AddressLimit:
    """At most ``limit`` connections from one address at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: dict[str, int] = {}

    def take(self, address: str) -> bool:
        if self.open.get(address, 0) >= self.limit:
            return False
        self.open[address] = self.open.get(address, 0) + 1
        return True

    def give_back(self, address: str) -> None:
        left = self.open.get(address, 1) - 1
        if left:
            self.open[address] = left
        else:
            self.open.pop(address, None)
