"""demonstration: items gain a lower-case title key, backfilled in batches, indexed concurrently

Not part of the real chain: ``make online-migration`` (tests/online_migration/run.py) and the
tests apply it through Alembic's version locations, on top of whatever the real head is.

Revision ID: demo_safe
Revises: (the real chain's head)
Create Date: 2026-12-04 12:00:00.000000

"""

import os

import sqlalchemy as sa
from alembic import op

from webapp.db.migrations import (
    add_column,
    backfill_in_batches,
    code_head,
    create_index_concurrently,
    drop_index_concurrently,
)

# revision identifiers, used by Alembic.
revision = "demo_safe"
down_revision = code_head()
branch_labels = None
depends_on = None

BATCH_SIZE = int(os.environ.get("ONLINE_MIGRATION_BATCH_SIZE", "5000"))


def upgrade() -> None:
    # Nullable: instant, and the code still running (which knows nothing of it) writes NULL.
    add_column("items", sa.Column("title_key", sa.String(length=100), nullable=True))
    backfill_in_batches(
        "items", "title_key = lower(title)", where="title_key IS NULL", batch_size=BATCH_SIZE
    )
    create_index_concurrently("ix_items_title_key", "items", ["title_key"])


def downgrade() -> None:
    drop_index_concurrently("ix_items_title_key", "items")
    op.drop_column("items", "title_key")
