"""trigram search indexes and sort-key indexes

On PostgreSQL: the pg_trgm extension and GIN trigram indexes on the columns the search boxes
read (users' email and username, items' and posts' titles), so ``column ILIKE '%text%'`` uses
an index instead of reading the table. On SQLite these are skipped: it has no trigram index.

On both databases: the indexes the lists' sort keys need so that every sort order is a walk
along one index with the id breaking ties (the creation-time indexes gain the id), and the
user flags the dashboard counts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# (index, table, column): GIN trigram indexes, PostgreSQL only.
TRIGRAM_INDEXES = (
    ('ix_users_email_trgm', 'users', 'email'),
    ('ix_users_username_trgm', 'users', 'username'),
    ('ix_items_title_trgm', 'items', 'title'),
    ('ix_posts_title_trgm', 'posts', 'title'),
)

# (old index, new index, table): creation-time indexes that gain the id (ties, index-only).
CREATED_AT_INDEXES = (
    ('ix_users_created_at', 'ix_users_created_at_id', 'users'),
    ('ix_items_created_at', 'ix_items_created_at_id', 'items'),
    ('ix_posts_created_at', 'ix_posts_created_at_id', 'posts'),
)

# (index, table, columns): B-tree indexes for sort keys, on every database.
SORT_INDEXES = (
    ('ix_users_is_active_id', 'users', ['is_active', 'id']),
    ('ix_users_is_admin_id', 'users', ['is_admin', 'id']),
    ('ix_items_title_id', 'items', ['title', 'id']),
    ('ix_items_updated_at_id', 'items', ['updated_at', 'id']),
    ('ix_posts_title_id', 'posts', ['title', 'id']),
    ('ix_posts_updated_at_id', 'posts', ['updated_at', 'id']),
)


def _on_postgresql() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


def upgrade() -> None:
    for old, new, table in CREATED_AT_INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(new, ['created_at', 'id'], unique=False)
            batch_op.drop_index(old)

    for name, table, columns in SORT_INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)

    if _on_postgresql():
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        for name, table, column in TRIGRAM_INDEXES:
            op.create_index(
                name,
                table,
                [column],
                unique=False,
                postgresql_using='gin',
                postgresql_ops={column: 'gin_trgm_ops'},
            )


def downgrade() -> None:
    if _on_postgresql():
        for name, table, _column in reversed(TRIGRAM_INDEXES):
            op.drop_index(name, table_name=table)
        # The extension stays: it may have been there before, and other objects may use it.

    for name, table, _columns in reversed(SORT_INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)

    for old, new, table in reversed(CREATED_AT_INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(old, ['created_at'], unique=False)
            batch_op.drop_index(new)
