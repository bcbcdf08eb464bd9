"""Dependencies every service's routes take: the resources its lifespan opened.

Typed ``Annotated`` aliases, so a route says ``engine: Engine`` and the type
checker knows what it gets, instead of reading ``request.state`` untyped.
Dependencies are ``async def`` even when they wait for nothing: FastAPI runs
a plain function in its thread pool, a thread hop on every request.
"""

from __future__ import annotations

from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine


def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.state.engine
    return engine


def get_redis(request: Request) -> aioredis.Redis:
    client: aioredis.Redis = request.state.redis
    return client


async def _engine(request: Request) -> AsyncEngine:
    return get_engine(request)


async def _redis(request: Request) -> aioredis.Redis:
    return get_redis(request)


Engine = Annotated[AsyncEngine, Depends(_engine)]
RedisClient = Annotated[aioredis.Redis, Depends(_redis)]
