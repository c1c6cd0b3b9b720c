"""an index for a row's history in the audit log

``/admin/<kind>s/<id>/history`` lists the events of one row, newest first: an index on
(target_type, target_id, id) finds them without reading the whole log. The log is large and
written on every change, so the index is built concurrently (no lock on writes).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 14:20:00.000000

"""
from webapp.db.migrations import create_index_concurrently, drop_index_concurrently


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    create_index_concurrently(
        'ix_audit_events_target', 'audit_events', ['target_type', 'target_id', 'id']
    )


def downgrade():
    drop_index_concurrently('ix_audit_events_target', 'audit_events')
