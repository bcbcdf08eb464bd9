"""bzr-store over SSH: the public keys a worker may log in with.

One row per key: the OpenSSH public key line as given (type, base64 blob,
comment) and its SHA256 fingerprint, by which it is removed. Named by
worker without a foreign key, as ``worker_grant`` is, leaving the
platform's ``worker`` table as it is; ``remove-worker`` deletes the keys.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE worker_key (
            worker text NOT NULL,
            fingerprint text NOT NULL,
            public_key text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (worker, fingerprint)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE worker_key")
