"""the trash: deleted_at and deleted_by_id on items, posts and users

Deleted items, posts and users are kept, marked, until ``flask trash purge`` erases them.
Under the rules of DESIGN §8: the columns are nullable (no table rewrite); the foreign key
to the deleting user is added NOT VALID and validated in a step of its own; the partial
indexes (trashed rows only, so they stay as small as the trash) are built concurrently.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 10:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

from webapp.db.migrations import (
    add_column,
    add_foreign_key_not_valid,
    create_index_concurrently,
    drop_index_concurrently,
    on_postgresql,
    validate_constraint,
)


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TABLES = ('items', 'posts', 'users')


def upgrade():
    for table in TABLES:
        add_column(table, sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))
        add_column(table, sa.Column('deleted_by_id', sa.Integer(), nullable=True))
    for table in TABLES:
        if constraint_exists(f'fk_{table}_deleted_by_id_users'):
            continue  # a rerun after an interruption past this step
        add_foreign_key_not_valid(
            f'fk_{table}_deleted_by_id_users',
            table,
            'users',
            ['deleted_by_id'],
            ['id'],
            ondelete='SET NULL',
        )
    keep_username_index()
    for table in TABLES:
        validate_constraint(table, f'fk_{table}_deleted_by_id_users')
    for table in TABLES:
        create_index_concurrently(
            f'ix_{table}_deleted_at_id',
            table,
            ['deleted_at', 'id'],
            postgresql_where=sa.text('deleted_at IS NOT NULL'),
            sqlite_where=sa.text('deleted_at IS NOT NULL'),
        )
        create_index_concurrently(
            f'ix_{table}_deleted_by_id',
            table,
            ['deleted_by_id'],
            postgresql_where=sa.text('deleted_by_id IS NOT NULL'),
            sqlite_where=sa.text('deleted_by_id IS NOT NULL'),
        )


def downgrade():
    for table in TABLES:
        drop_index_concurrently(f'ix_{table}_deleted_by_id', table)
        drop_index_concurrently(f'ix_{table}_deleted_at_id', table)
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f'fk_{table}_deleted_by_id_users', type_='foreignkey')
            batch.drop_column('deleted_by_id')
            batch.drop_column('deleted_at')
    keep_username_index()


def constraint_exists(name):
    """True when PostgreSQL has the constraint ``name`` already (never offline, or on SQLite)."""
    if not on_postgresql() or op.get_context().as_sql:
        return False
    found = op.get_bind().execute(
        sa.text('SELECT 1 FROM pg_constraint WHERE conname = :name'), {'name': name}
    )
    return found.scalar() is not None


def keep_username_index():
    """SQLite rebuilds a table to change its foreign keys, and the rebuild loses the index on
    an expression (Alembic cannot read it back there): make it again."""
    if not on_postgresql():
        op.execute(
            'CREATE UNIQUE INDEX IF NOT EXISTS uq_users_username_lower ON users (lower(username))'
        )
