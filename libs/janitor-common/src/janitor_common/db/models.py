"""Models of the platform tables the services use.

Table and column names and types follow the platform's existing schema so
these models run against a platform database created by its own SQL. Only
the columns the services read or write are mapped; a platform table may have
more, which SQLAlchemy then leaves alone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ARRAY, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSON
from sqlalchemy.dialects.postgresql import base as postgresql_base
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import UserDefinedType


class DebVersion(UserDefinedType[str]):
    """PostgreSQL ``debversion`` (from postgresql-debversion): Debian version ordering."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "debversion"


# Reflection knows the type too, so a migrated database compares with the models.
postgresql_base.ischema_names["debversion"] = DebVersion


class Base(DeclarativeBase):
    pass


class Codebase(Base):
    __tablename__ = "codebase"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    url: Mapped[str | None] = mapped_column(Text)
    branch_url: Mapped[str | None] = mapped_column(Text)
    branch: Mapped[str | None] = mapped_column(Text)
    subpath: Mapped[str | None] = mapped_column(Text)
    value: Mapped[int | None] = mapped_column(Integer)
    inactive: Mapped[bool] = mapped_column(Boolean, default=False)


class Worker(Base):
    __tablename__ = "worker"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    # A pgcrypto crypt() hash; never the password itself.
    password: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(Text)


class ChangeSet(Base):
    __tablename__ = "change_set"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    campaign: Mapped[str | None] = mapped_column(Text)
    # An enum (change_set_state) in the platform's schema; read and written as text.
    state: Mapped[str] = mapped_column(Text, default="created")


class Run(Base):
    __tablename__ = "run"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    command: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    start_time: Mapped[datetime | None] = mapped_column(DateTime)
    finish_time: Mapped[datetime | None] = mapped_column(DateTime)
    codebase: Mapped[str] = mapped_column(Text, ForeignKey("codebase.name"))
    # The campaign name is called "suite" in the platform's schema.
    suite: Mapped[str] = mapped_column(Text)
    result_code: Mapped[str] = mapped_column(Text)
    revision: Mapped[str | None] = mapped_column(Text)
    main_branch_revision: Mapped[str | None] = mapped_column(Text)
    change_set: Mapped[str] = mapped_column(Text, ForeignKey("change_set.id"))
    branch_url: Mapped[str | None] = mapped_column(Text)
    logfilenames: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    worker: Mapped[str | None] = mapped_column(Text)
    failure_details: Mapped[object | None] = mapped_column(JSON)


class DebianBuild(Base):
    __tablename__ = "debian_build"

    run_id: Mapped[str] = mapped_column(Text, ForeignKey("run.id"), primary_key=True)
    version: Mapped[str] = mapped_column(DebVersion())
    distribution: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    binary_packages: Mapped[list[str] | None] = mapped_column(ARRAY(Text))


class AutoUpload(Base):
    """Our upload ledger (migrations 0002, 0003): what was uploaded, tried, or is in hand.

    Ours entirely, so mapped entirely (indexes too): a test compares it with
    the migrated database.
    """

    __tablename__ = "auto_upload"
    __table_args__ = (
        Index(
            "auto_upload_claimable_idx",
            "next_attempt_at",
            postgresql_where=text("state IN ('pending', 'uploading')"),
        ),
    )

    run_id: Mapped[str] = mapped_column(Text, primary_key=True)
    changes_filename: Mapped[str] = mapped_column(Text, primary_key=True)
    state: Mapped[str] = mapped_column(Text, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    claimed_by: Mapped[str | None] = mapped_column(Text)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    uploaded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WorkerGrant(Base):
    """Where a worker may write in bzr-store (migration 0004): glob patterns; no row at all means anywhere."""

    __tablename__ = "worker_grant"

    worker: Mapped[str] = mapped_column(Text, primary_key=True)
    codebase: Mapped[str] = mapped_column(Text, primary_key=True, default="*")
    campaign: Mapped[str] = mapped_column(Text, primary_key=True, default="*")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BzrWriteAudit(Base):
    """One row per write request bzr-store accepted (migration 0004); append-only."""

    __tablename__ = "bzr_write_audit"
    __table_args__ = (Index("bzr_write_audit_at_idx", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    interface: Mapped[str] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(Text)
    client: Mapped[str | None] = mapped_column(Text)
    codebase: Mapped[str] = mapped_column(Text)
    campaign: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(Text)
    verb: Mapped[str] = mapped_column(Text)
    verb_class: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text)
    tip_before: Mapped[str | None] = mapped_column(Text)
    tip_after: Mapped[str | None] = mapped_column(Text)


class WorkerKey(Base):
    """A public key a worker may log in to bzr-store's SSH server with (migration 0005)."""

    __tablename__ = "worker_key"

    worker: Mapped[str] = mapped_column(Text, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(Text, primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
