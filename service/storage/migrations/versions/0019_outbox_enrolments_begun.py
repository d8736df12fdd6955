"""outbox enrolments begun: a partial index over the outbox rows of kind
`enrolments.begun`, each of which holds many people's enrolment beginnings (one
row per thousand, rather than a row per person).

Why: an erasure finds the person's rows by their contact key, and these rows have
none (many people's); it reads them by this index and takes the person's
beginnings out (`service/deliveries/outbox.py`). The index holds only those rows,
a thousandth of the enrolments begun.

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ix_marketing_outbox_enrolments_begun"


def upgrade() -> None:
    op.create_index(
        _NAME,
        "marketing_outbox",
        ["seq"],
        postgresql_where=sa.text("kind = 'enrolments.begun'"),
    )


def downgrade() -> None:
    op.drop_index(_NAME, table_name="marketing_outbox")
