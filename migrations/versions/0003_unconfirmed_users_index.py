"""partial index of the users who have not confirmed their email

The admin users list's "Confirmed email: no" filter, newest first, walks this index: it
holds only the unconfirmed users. Without it the filter walked the whole creation-time index
when few users were unconfirmed (128 ms at 100,000 users when none were). Both PostgreSQL
and SQLite have partial indexes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 16:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

UNCONFIRMED = sa.text('email_confirmed_at IS NULL')


def upgrade() -> None:
    op.create_index(
        'ix_users_unconfirmed_created_at_id',
        'users',
        ['created_at', 'id'],
        unique=False,
        postgresql_where=UNCONFIRMED,
        sqlite_where=UNCONFIRMED,
    )


def downgrade() -> None:
    op.drop_index('ix_users_unconfirmed_created_at_id', table_name='users')
