"""HTTP Basic authentication of workers against the ``worker`` table.

Passwords are pgcrypto ``crypt()`` hashes, checked in the database so the
platform's existing accounts work unchanged. An unknown worker costs the same
bcrypt work as a wrong password, so the two look the same from outside.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

REALM = "janitor"
CHALLENGE = {"WWW-Authenticate": f'Basic realm="{REALM}"'}
# A bcrypt hash of a random string nobody knows; compared against when the
# worker does not exist, so that case takes as long as a wrong password.
_DUMMY_HASH = "$2a$06$RPQTkoD0kms1kDlyiqU6b.LBlQqW1rLeO1PvtaLBteDy701ILHdQS"

_CHECK = text(
    """
    SELECT w.name IS NOT NULL AND crypt(:password, h.hash) = h.hash
    FROM (SELECT coalesce((SELECT password FROM worker WHERE name = :name), :dummy) AS hash) AS h
    LEFT JOIN worker AS w ON w.name = :name
    """
)


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """The (user, password) of a Basic ``Authorization`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return user, password


async def check_worker(engine: AsyncEngine, name: str, password: str) -> bool:
    async with engine.connect() as conn:
        result = await conn.execute(_CHECK, {"name": name, "password": password, "dummy": _DUMMY_HASH})
        return bool(result.scalar())


def unauthorized(message: str = "authentication required") -> HTTPException:
    return HTTPException(401, message, headers=dict(CHALLENGE))


def worker_dependency(
    get_engine: Callable[[Request], AsyncEngine], *, optional: bool = False
) -> Callable[[Request], Awaitable[str | None]]:
    """A FastAPI dependency returning the authenticated worker's name.

    With ``optional=True``, a request without credentials yields None (an
    anonymous client); wrong credentials are always a 401.
    """

    async def dependency(request: Request) -> str | None:
        creds = parse_basic(request.headers.get("authorization"))
        if creds is None:
            if optional and "authorization" not in request.headers:
                return None
            raise unauthorized()
        name, password = creds
        if not await check_worker(get_engine(request), name, password):
            raise unauthorized("invalid credentials")
        return name

    return dependency
