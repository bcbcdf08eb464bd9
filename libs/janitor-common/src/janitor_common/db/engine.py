"""Engine construction shared by the services and the CLI."""

from __future__ import annotations

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def to_sqlalchemy_url(url: str) -> str:
    """Operators write libpq URLs; SQLAlchemy needs the driver named."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url}")


def make_async_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    # pool_pre_ping: a service outlives database restarts; stale connections
    # are replaced instead of failing the first request after one.
    return create_async_engine(
        to_sqlalchemy_url(url),
        pool_size=pool_size,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 5},
    )


def make_sync_engine(url: str) -> Engine:
    return create_engine(to_sqlalchemy_url(url), pool_pre_ping=True, connect_args={"connect_timeout": 5})
