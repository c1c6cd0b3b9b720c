"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
# Migrations without downtime (DESIGN §8; helpers in webapp/db/migrations.py). Old code keeps
# serving while this runs, and after it until every instance has the new release:
# - runs with lock_timeout and statement_timeout (set by env.py), each revision in its own
#   transaction; keep the transaction short and its locks few;
# - an index on an existing table: create_index_concurrently(...) / drop_index_concurrently(...);
# - a new column: nullable, or with a constant server_default;
# - a NOT NULL, foreign key or check on existing rows: add_check_not_valid(...) /
#   add_foreign_key_not_valid(...), then validate_constraint(...);
# - a backfill: backfill_in_batches(...), never one UPDATE of the whole table;
# - drop or rename a column or table only in a later release, once no running code uses it.
# `make test` lints this revision's SQL with squawk; a rule it must break goes, with the
# reason, in migrations/squawk-exceptions.toml.
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade():
    ${upgrades if upgrades else "pass"}


def downgrade():
    ${downgrades if downgrades else "pass"}
