"""Alembic environment: synchronous psycopg connection, our own version table."""

from __future__ import annotations

from alembic import context

from janitor_common.db.engine import make_sync_engine
from janitor_common.db.migrate import VERSION_TABLE
from janitor_common.db.models import Base

url = context.config.attributes["database_url"]
engine = make_sync_engine(url)
try:
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
