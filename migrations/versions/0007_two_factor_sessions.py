"""two-factor sign-in and a record per signed-in browser

Three nullable columns on ``users`` for TOTP (no default: no table rewrite, only a brief
lock), and two new tables: ``user_sessions`` (one row per signed-in browser; its key is in
the session cookie) and ``recovery_codes`` (hashed single-use codes). The new tables are
empty, so their indexes are built with them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 13:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

from webapp.db.migrations import add_column


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: no table rewrite; the migration's lock_timeout bounds the moment
    # ADD COLUMN holds its lock on users (webapp.db.migrations).
    add_column('users', sa.Column('totp_secret', sa.Text(), nullable=True))
    add_column('users', sa.Column('totp_enabled_at', sa.DateTime(timezone=True), nullable=True))
    add_column('users', sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    op.create_table(
        'user_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.Text(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('user_agent', sa.Text(), nullable=True),
        sa.Column('ip_address', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_active_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('authenticated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions')),
        sa.UniqueConstraint('key', name=op.f('uq_user_sessions_key')),
    )
    op.create_index(op.f('ix_user_sessions_user_id'), 'user_sessions', ['user_id'], unique=False)
    op.create_table(
        'recovery_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_recovery_codes_user_id_users'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes')),
        sa.UniqueConstraint('user_id', 'code_hash', name=op.f('uq_recovery_codes_user_id_code_hash')),
    )


def downgrade() -> None:
    op.drop_table('recovery_codes')
    op.drop_index(op.f('ix_user_sessions_user_id'), table_name='user_sessions')
    op.drop_table('user_sessions')
    # Plain DROP COLUMN (SQLite has it since 3.35): a batch copy of ``users`` on SQLite would
    # lose the expression index on lower(username), which SQLite's reflection cannot read.
    op.drop_column('users', 'totp_last_step')
    op.drop_column('users', 'totp_enabled_at')
    op.drop_column('users', 'totp_secret')
