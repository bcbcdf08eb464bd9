"""The platform tables the services use: codebase, worker, change_set, run, debian_build.

The DDL follows the platform's own schema. A platform database already has
these tables, so each one is created only when missing, and the ones we did
create are recorded, so a downgrade drops only what this migration made and
never a table of the platform's.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import DBAPIError

from janitor_common.db import debversion

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

OWNED = "janitor_services_owned"

EXTENSIONS = ["pgcrypto", "debversion"]

TABLES: list[tuple[str, str]] = [
    (
        "codebase",
        """
        CREATE TABLE codebase (
            name text NOT NULL PRIMARY KEY,
            branch_url text,
            url text,
            branch text,
            subpath text,
            vcs_type text,
            vcs_last_revision text,
            value integer,
            inactive boolean NOT NULL DEFAULT false,
            last_scanned timestamp,
            CONSTRAINT codebase_url_branch_url CHECK ((url IS NULL) = (branch_url IS NULL))
        )
        """,
    ),
    (
        "worker",
        """
        CREATE TABLE worker (
            name text NOT NULL PRIMARY KEY,
            password text NOT NULL,
            link text
        )
        """,
    ),
    (
        "change_set",
        """
        CREATE TABLE change_set (
            id text NOT NULL PRIMARY KEY,
            campaign text,
            state text NOT NULL DEFAULT 'created'
        )
        """,
    ),
    (
        "run",
        """
        CREATE TABLE run (
            id text NOT NULL PRIMARY KEY,
            command text,
            description text,
            start_time timestamp,
            finish_time timestamp,
            instigated_context text,
            context text,
            main_branch_revision text,
            vcs_type text,
            branch_url text,
            subpath text,
            result_code text NOT NULL,
            revision text,
            result json,
            suite text NOT NULL,
            logfilenames text[] NOT NULL DEFAULT '{}',
            value integer,
            worker text REFERENCES worker (name),
            worker_link text,
            target_branch_url text,
            change_set text NOT NULL REFERENCES change_set (id),
            failure_details json,
            failure_transient boolean,
            failure_stage text[],
            codebase text NOT NULL REFERENCES codebase (name),
            resume_from text REFERENCES run (id),
            CHECK (finish_time IS NULL OR start_time IS NULL OR finish_time >= start_time)
        );
        CREATE INDEX run_codebase_suite_idx ON run (codebase, suite);
        CREATE INDEX run_revision_idx ON run (revision);
        CREATE INDEX run_main_branch_revision_idx ON run (main_branch_revision);
        CREATE INDEX run_change_set_idx ON run (change_set);
        CREATE INDEX run_finish_time_idx ON run (finish_time);
        CREATE INDEX run_result_code_idx ON run (result_code)
        """,
    ),
    (
        "debian_build",
        """
        CREATE TABLE debian_build (
            run_id text NOT NULL PRIMARY KEY REFERENCES run (id),
            version debversion NOT NULL,
            distribution text NOT NULL,
            source text NOT NULL,
            binary_packages text[],
            lintian_result json
        );
        CREATE INDEX debian_build_distribution_source_version_idx
            ON debian_build (distribution, source, version)
        """,
    ),
]


def upgrade() -> None:
    bind = op.get_bind()
    op.execute(f"CREATE TABLE IF NOT EXISTS {OWNED} (kind text NOT NULL, name text NOT NULL, PRIMARY KEY (kind, name))")
    for ext in EXTENSIONS:
        present = bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = :n"), {"n": ext}).first()
        if present:
            continue
        if ext == "debversion" and bind.execute(sa.text("SELECT to_regtype('debversion')")).scalar():
            continue  # the type exists without the extension (made by an earlier fallback)
        savepoint = bind.begin_nested()
        try:
            op.execute(f'CREATE EXTENSION "{ext}"')
            savepoint.commit()
            bind.execute(sa.text(f"INSERT INTO {OWNED} VALUES ('extension', :n)"), {"n": ext})
        except DBAPIError as e:
            savepoint.rollback()
            if ext != "debversion" or "negator" not in str(e.orig):
                raise
            for statement in debversion.ddl():
                op.execute(statement)
            bind.execute(sa.text(f"INSERT INTO {OWNED} VALUES ('type', 'debversion')"))
    for name, ddl in TABLES:
        present = bind.execute(sa.text("SELECT to_regclass(:n)"), {"n": f"public.{name}"}).scalar()
        if present is None:
            for statement in ddl.split(";"):
                if statement.strip():
                    op.execute(statement)
            bind.execute(sa.text(f"INSERT INTO {OWNED} VALUES ('table', :n)"), {"n": name})


def downgrade() -> None:
    bind = op.get_bind()
    owned = {(k, n) for k, n in bind.execute(sa.text(f"SELECT kind, name FROM {OWNED}"))}
    for name, _ddl in reversed(TABLES):
        if ("table", name) in owned:
            op.execute(f"DROP TABLE {name}")
    if ("type", "debversion") in owned:
        op.execute(debversion.DROP)
    for ext in reversed(EXTENSIONS):
        if ("extension", ext) in owned:
            op.execute(f'DROP EXTENSION "{ext}"')
    op.execute(f"DROP TABLE {OWNED}")
