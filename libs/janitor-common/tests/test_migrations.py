import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from janitor_common.db import migrate
from janitor_common.db.engine import make_async_engine
from janitor_common.db.models import ChangeSet, Codebase, DebianBuild, Run, Worker

TABLES = {"codebase", "worker", "change_set", "run", "debian_build"}


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    url = empty_database_url
    assert tables(url) == set()
    migrate.upgrade(url)
    assert tables(url) >= TABLES
    assert migrate.current_revision(url) == migrate.head_revision()
    migrate.downgrade(url, "base")
    assert tables(url) == {migrate.VERSION_TABLE}
    assert migrate.current_revision(url) is None
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regtype('debversion')").fetchone() == (None,)
    migrate.upgrade(url)
    assert tables(url) >= TABLES


def test_debversion_orders_like_dpkg(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT '1.0-1~jan1'::debversion < '1.0-1', '1:0.1'::debversion > '9.9', "
            "'1.0+b1'::debversion > '1.0', max(v) FROM (VALUES ('1.0'::debversion), ('1.0+b1'), ('1.0~rc1')) t(v)"
        ).fetchone()
    assert row == (True, True, True, "1.0+b1")


PLATFORM_SQL = """
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TYPE vcs_type AS ENUM ('bzr', 'git', 'svn', 'mtn', 'hg', 'arch', 'cvs', 'darcs');
CREATE TYPE change_set_state AS ENUM ('created', 'working', 'ready', 'publishing', 'done');
CREATE TYPE review_status AS ENUM ('unreviewed', 'approved', 'rejected', 'abstained');
CREATE TABLE codebase (
  name text NOT NULL UNIQUE, branch_url text, url text, branch text, subpath text,
  vcs_type vcs_type, vcs_last_revision text, value integer, inactive boolean NOT NULL DEFAULT false,
  last_scanned timestamp, extra_platform_column text
);
CREATE TABLE worker (name text NOT NULL UNIQUE, password text NOT NULL, link text);
CREATE TABLE change_set (id text NOT NULL UNIQUE, campaign text, state change_set_state NOT NULL DEFAULT 'created');
CREATE TABLE run (
  id text NOT NULL PRIMARY KEY, command text, description text, start_time timestamp, finish_time timestamp,
  main_branch_revision text, vcs_type vcs_type, branch_url text, result_code text NOT NULL, revision text,
  suite text NOT NULL, logfilenames text[] NOT NULL, review_status review_status NOT NULL DEFAULT 'unreviewed',
  worker text REFERENCES worker (name), change_set text NOT NULL REFERENCES change_set (id),
  failure_details json, codebase text NOT NULL REFERENCES codebase (name)
);
CREATE TABLE debian_build (
  run_id text NOT NULL REFERENCES run (id), version text NOT NULL, distribution text NOT NULL,
  source text NOT NULL, binary_packages text[], lintian_result json
);
INSERT INTO codebase (name, url, branch_url, vcs_type) VALUES ('foo', 'https://x/foo', 'https://x/foo', 'git');
INSERT INTO worker (name, password) VALUES ('w1', crypt('pw', gen_salt('bf')));
INSERT INTO change_set (id, campaign, state) VALUES ('cs1', 'lintian-fixes', 'ready');
INSERT INTO run (id, codebase, suite, result_code, revision, main_branch_revision, change_set,
                 finish_time, logfilenames, vcs_type, worker)
  VALUES ('run1', 'foo', 'lintian-fixes', 'success', 'rev2', 'rev1', 'cs1', '2026-01-01 10:00', '{build.log}',
          'git', 'w1');
INSERT INTO debian_build (run_id, version, distribution, source, binary_packages)
  VALUES ('run1', '1.0-1~jan+lint1', 'lintian-fixes', 'foo', '{foo,libfoo1}');
"""


async def test_models_read_platform_tables_created_by_plain_sql(empty_database_url: str) -> None:
    """The platform's database was made by its own SQL; upgrading adopts it without touching its tables."""
    with psycopg.connect(empty_database_url) as conn:
        conn.execute(PLATFORM_SQL.encode())
    migrate.upgrade(empty_database_url)
    with psycopg.connect(empty_database_url) as conn:
        owned = conn.execute("SELECT kind, name FROM janitor_services_owned").fetchall()
    assert not [n for k, n in owned if k == "table"]  # every table was the platform's

    engine = make_async_engine(empty_database_url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            run = (await session.execute(select(Run).where(Run.id == "run1"))).scalar_one()
            assert (run.codebase, run.suite, run.result_code) == ("foo", "lintian-fixes", "success")
            assert (run.revision, run.main_branch_revision, run.change_set) == ("rev2", "rev1", "cs1")
            assert run.logfilenames == ["build.log"]
            build = (await session.execute(select(DebianBuild))).scalar_one()
            assert (build.version, build.source, build.binary_packages) == (
                "1.0-1~jan+lint1",
                "foo",
                ["foo", "libfoo1"],
            )
            cs = (await session.execute(select(ChangeSet))).scalar_one()
            assert cs.state == "ready"
            cb = (await session.execute(select(Codebase))).scalar_one()
            assert cb.url == cb.branch_url == "https://x/foo"
            worker = (await session.execute(select(Worker))).scalar_one()
            assert worker.name == "w1" and worker.password.startswith("$2")
    finally:
        await engine.dispose()

    # A downgrade must not drop the platform's tables.
    migrate.downgrade(empty_database_url, "base")
    assert tables(empty_database_url) >= TABLES


async def test_models_write_and_read_our_schema(database_url: str) -> None:
    engine = make_async_engine(database_url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            session.add(Codebase(name="bar", url="https://x/bar", branch_url="https://x/bar"))
            session.add(ChangeSet(id="cs"))
            await session.flush()
            session.add(Run(id="r", codebase="bar", suite="unchanged", result_code="success", change_set="cs"))
            await session.flush()
            session.add(DebianBuild(run_id="r", version="2.0-1", distribution="unchanged", source="bar"))
        async with AsyncSession(engine, expire_on_commit=False) as session:
            build = (await session.execute(select(DebianBuild).where(DebianBuild.version > "2.0~rc1"))).scalar_one()
            assert build.run_id == "r"
    finally:
        await engine.dispose()


def test_codebase_url_and_branch_url_set_together(database_url: str) -> None:
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO codebase (name, url) VALUES ('x', 'https://x')")


# Our bookkeeping tables, which the models do not describe.
BOOKKEEPING = {"janitor_services_alembic_version", "janitor_services_owned"}
# Tables entirely ours: the models must describe all of them, indexes included.
OURS = {"auto_upload", "worker_grant", "bzr_write_audit", "worker_key"}


def test_models_and_migrations_describe_the_same_schema(database_url: str) -> None:
    """The migrated database against the models (Alembic's compare_metadata), so neither drifts.

    The platform's tables are mapped only for the columns the services use:
    columns and indexes the migrations create for the platform's own use are
    expected to be missing from the models; nothing else may differ.
    """
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from janitor_common.db.engine import to_sqlalchemy_url
    from janitor_common.db.models import Base

    engine = create_engine(to_sqlalchemy_url(database_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()

    def table_of(diff: tuple) -> str | None:  # type: ignore[type-arg]
        for item in diff[1:]:
            table = getattr(item, "table", None)
            if table is not None:
                return str(table.name)
            if isinstance(item, str) and item in {t.name for t in Base.metadata.tables.values()} | BOOKKEEPING:
                return item
            name = getattr(item, "name", None)
            if isinstance(name, str) and name in BOOKKEEPING:
                return name
        return None

    unexpected = []
    for diff in differences:
        if isinstance(diff, list):  # a column's changes come grouped: always unexpected
            unexpected.append(diff)
            continue
        kind, table = diff[0], table_of(diff)
        if table in BOOKKEEPING:
            continue
        if kind in ("remove_column", "remove_index", "remove_fk") and table not in OURS:
            continue  # the platform's columns the services do not use
        unexpected.append(diff)
    assert unexpected == []
