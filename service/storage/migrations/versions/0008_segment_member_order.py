"""segment members in id order: an index on (segment, contact_id)

An audience is read a page at a time, `segment = S AND contact_id > after
ORDER BY contact_id LIMIT n`. With only the primary key (contact_id, segment)
and an index on `segment`, PostgreSQL either walks every membership from
`after` on (fine for a segment holding most people) or takes all of a
segment's members past `after` and sorts them for each page, which it chose
for a segment it had no statistics for yet (a new one): 2.5 s a page, 40 s
for a 520,000-person audience. This index answers each page by reading just
its rows, whatever the statistics, and replaces the index on `segment`,
whose prefix it is. (Not unique: the primary key already is, in the other
order; built in the migration's transaction, which holds up membership writes
for the seconds it takes at a million members.)

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_marketing_segment_membership_segment_contact",
        "marketing_segment_membership",
        ["segment", "contact_id"],
    )
    op.drop_index("ix_marketing_segment_membership_segment", "marketing_segment_membership")


def downgrade() -> None:
    op.create_index(
        "ix_marketing_segment_membership_segment", "marketing_segment_membership", ["segment"]
    )
    op.drop_index("ix_marketing_segment_membership_segment_contact", "marketing_segment_membership")
