"""auto-upload ledger: the tools' output of a success apart from errors, and forced re-uploads.

``output`` keeps what debsign and dput said on a successful upload, so
``last_error`` is only ever a failure's reason. ``forced`` marks a row an
operator queued again with ``janitor-auto-upload force``: its next attempt
moves dput's earlier log aside, so the upload really goes again.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE auto_upload ADD COLUMN output text, ADD COLUMN forced boolean NOT NULL DEFAULT false")
    # Successes used to keep dput's chatter in last_error.
    op.execute("UPDATE auto_upload SET output = last_error, last_error = NULL WHERE state = 'uploaded'")


def downgrade() -> None:
    op.execute("ALTER TABLE auto_upload DROP COLUMN output, DROP COLUMN forced")
