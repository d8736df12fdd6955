"""an enrolment no longer keeps its message's context: `marketing_enrolment.context`
is dropped.

Why: the context (the trigger event's body: a cart's lines, a restock's product and
purchase link) goes to the provider in the beginning's message, and nothing read it
back from the enrolment. Its cause holds it already: `cause_ref` names the event,
whose body the event log keeps, or the waitlist subscription, whose restock keeps
the product. Kept twice, it cost PostgreSQL a JSONB value parsed and stored for each
enrolment (about 250 bytes for a restock's; 100,000 for a large waitlist) and made
one more copy of a person's cart to erase.

Downgrading adds the column back, `{}` for every enrolment: what the messages
carried is not rebuilt.

Revision ID: 0023
Revises: 0022
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_column("marketing_enrolment", "context")


def downgrade() -> None:
    op.add_column(
        "marketing_enrolment",
        sa.Column("context", JSONB(), nullable=False, server_default="{}"),
    )
