"""Workers' changes reach every running process within moments: PostgreSQL NOTIFY.

bzr-store trusts a verified password for a while (bcrypt is slow and a push
is dozens of requests), so a removed worker kept pushing for up to a minute.
``janitor-db`` now announces every change to a worker on WORKER_CHANNEL in
the transaction that makes it, and each process listening forgets what it
cached about that worker. A listener that loses its connection forgets
everything when it is back (it may have missed announcements); the cache's
lifetime stays the backstop while it is away. Changes made to the table by
other tools are seen within that lifetime.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg

logger = logging.getLogger(__name__)

WORKER_CHANNEL = "janitor_worker_changed"


def libpq_url(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1] if "://" in url else url


async def watch_worker_changes(
    database_url: str,
    forget: Callable[[str], None],
    forget_all: Callable[[], None],
    *,
    retry_seconds: float = 2.0,
) -> None:
    """Call ``forget(name)`` for each announced worker until cancelled; reconnects when the database goes."""
    connected_before = False
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                libpq_url(database_url), autocommit=True, connect_timeout=5
            ) as conn:
                await conn.execute(f"LISTEN {WORKER_CHANNEL}")
                if connected_before:
                    forget_all()  # announcements may have been missed meanwhile
                connected_before = True
                logger.debug("listening for worker changes")
                async for notify in conn.notifies():
                    logger.info("worker %s changed: its cached credentials are dropped", notify.payload)
                    forget(notify.payload)
        except (psycopg.Error, OSError) as e:
            if connected_before:
                forget_all()
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            logger.warning("listening for worker changes failed (%s); retrying", reason)
            await asyncio.sleep(retry_seconds)
