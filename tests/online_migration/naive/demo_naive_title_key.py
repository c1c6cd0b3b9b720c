"""demonstration, written the naive way: one UPDATE of every item, a plain CREATE INDEX

The same change as ``demo_safe``, as it is often written: everything in the migration's one
transaction, which holds the table's ACCESS EXCLUSIVE lock (from ADD COLUMN) until the whole
backfill and index build are done. ``make online-migration --naive`` measures what that costs.

Revision ID: demo_naive
Revises: (the real chain's head)
Create Date: 2026-12-04 12:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

from webapp.db.migrations import code_head

# revision identifiers, used by Alembic.
revision = "demo_naive"
down_revision = code_head()
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("items", sa.Column("title_key", sa.String(length=100), nullable=True))
    op.execute("UPDATE items SET title_key = lower(title)")
    op.create_index("ix_items_title_key", "items", ["title_key"])


def downgrade() -> None:
    op.drop_index("ix_items_title_key", table_name="items")
    op.drop_column("items", "title_key")
