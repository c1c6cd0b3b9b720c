"""an index for a row's history in the audit log

``/admin/<kind>s/<id>/history`` lists the events of one row, newest first: an index on
(target_type, target_id, id) finds them without reading the whole log. The log is large and
written on every change, so the index is built concurrently (no lock on writes).

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-04 14:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0004'
branch_labels = None
depends_on = None

COLUMNS = ['target_type', 'target_id', 'id']


def upgrade():
    with op.get_context().autocommit_block():
        op.create_index(
            'ix_audit_events_target',
            'audit_events',
            COLUMNS,
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index(
            'ix_audit_events_target',
            table_name='audit_events',
            postgresql_concurrently=True,
            if_exists=True,
        )
