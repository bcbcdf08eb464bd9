"""Dependencies every service's routes take: the resources its lifespan opened.

Typed ``Annotated`` aliases, so a route says ``engine: Engine`` and the type
checker knows what it gets, instead of reading ``request.state`` untyped.
Dependencies are ``async def`` even when they wait for nothing: FastAPI runs
a plain function in its thread pool, a thread hop on every request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine


def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.state.engine
    return engine


def get_redis(request: Request) -> aioredis.Redis:
    client: aioredis.Redis = request.state.redis
    return client


def from_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency giving the lifespan's resource ``name``; wrap it in ``Annotated`` with its type."""

    async def dependency(request: Request) -> Any:
        return getattr(request.state, name)

    return dependency


Engine = Annotated[AsyncEngine, Depends(from_state("engine"))]
RedisClient = Annotated[aioredis.Redis, Depends(from_state("redis"))]
