"""The auto-upload ledger: one row per (run, .changes file) and what became of it.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE auto_upload (
            run_id text NOT NULL,
            changes_filename text NOT NULL,
            state text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'uploading', 'uploaded', 'failed')),
            attempts integer NOT NULL DEFAULT 0,
            last_error text,
            claimed_by text,
            lease_until timestamptz,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            uploaded_at timestamptz,
            PRIMARY KEY (run_id, changes_filename)
        )
        """
    )
    op.execute(
        "CREATE INDEX auto_upload_claimable_idx ON auto_upload (next_attempt_at) "
        "WHERE state IN ('pending', 'uploading')"
    )


def downgrade() -> None:
    op.execute("DROP TABLE auto_upload")
