"""bzr-store: per-worker grants, and the append-only audit of writes.

``worker_grant`` limits a worker to codebases and campaigns (glob
patterns); a worker with no row writes anywhere, as before. It names the
worker without a foreign key: the platform's ``worker`` table is left as it
is, and ``janitor-db remove-worker`` deletes the worker's grants itself.

``bzr_write_audit`` gets one row per accepted write request. A trigger
refuses UPDATE and DELETE, so the table only grows (TRUNCATE, an owner's
deliberate act, stays possible for retention).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE worker_grant (
            worker text NOT NULL,
            codebase text NOT NULL DEFAULT '*',
            campaign text NOT NULL DEFAULT '*',
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (worker, codebase, campaign)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE bzr_write_audit (
            id bigserial PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT now(),
            interface text NOT NULL,
            worker text,
            client text,
            codebase text NOT NULL,
            campaign text,
            role text,
            verb text NOT NULL,
            verb_class text NOT NULL,
            outcome text NOT NULL,
            tip_before text,
            tip_after text
        )
        """
    )
    op.execute("CREATE INDEX bzr_write_audit_at_idx ON bzr_write_audit (at)")
    op.execute(
        """
        CREATE FUNCTION bzr_write_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'bzr_write_audit is append-only';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER bzr_write_audit_append_only BEFORE UPDATE OR DELETE ON bzr_write_audit "
        "FOR EACH ROW EXECUTE FUNCTION bzr_write_audit_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TABLE bzr_write_audit")
    op.execute("DROP FUNCTION bzr_write_audit_append_only()")
    op.execute("DROP TABLE worker_grant")
