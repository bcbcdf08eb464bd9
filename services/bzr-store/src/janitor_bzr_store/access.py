"""Who may do what on the public interface.

Breezy's HTTP client sends Basic credentials only after a 401 challenge,
and the smart protocol carries no authentication of its own. So anonymous
requests are served read-only, and a request whose verb writes is answered
with a 401 challenge *before it runs*: a worker whose URL holds credentials
then retries with them, while an anonymous client gets an authentication
error and nothing is written. Reads never challenge, so ``brz branch`` needs
no credentials and never prompts.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from janitor_common.auth import check_worker
from janitor_common.db.models import Codebase

# bcrypt is deliberately slow (~5 ms) and brz sends dozens of requests per
# push; a verified (worker, password digest) pair is trusted for a minute,
# or until janitor-db announces a change to the worker (invalidation.py).
CREDENTIALS_TTL = 60.0
CODEBASE_TTL = 60.0


@dataclass
class CredentialCache:
    ttl: float = CREDENTIALS_TTL
    _valid: dict[tuple[str, bytes], float] = field(default_factory=dict)

    async def check(self, engine: AsyncEngine, name: str, password: str) -> bool:
        key = (name, hashlib.sha256(password.encode()).digest())
        now = time.monotonic()
        expiry = self._valid.get(key)
        if expiry is not None and expiry > now:
            return True
        if not await check_worker(engine, name, password):
            self._valid.pop(key, None)
            return False
        if len(self._valid) > 10_000:
            self._valid.clear()
        self._valid[key] = now + self.ttl
        return True

    def forget(self, name: str) -> None:
        """Drop what is cached for worker ``name`` (it was removed or changed)."""
        for key in [k for k in self._valid if k[0] == name]:
            del self._valid[key]

    def forget_all(self) -> None:
        self._valid.clear()


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
