"""segment pending: the contacts whose dynamic segments are to be re-evaluated

A change to a contact (its row, consent, suppression, events) records the
contact here in its own transaction; the segment refresher takes them in
batches and evaluates every dynamic segment for a batch at once. Each
segment keeps the event types its conditions count, so an event of another
type records nobody.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Append-only: a writer's row is invisible to drains until it commits (a
    # row shared per contact would let a drain take it while a second writer's
    # change is still uncommitted, and that change would never be evaluated).
    op.create_table(
        "marketing_segment_pending",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "contact_id",
            sa.Uuid(),
            sa.ForeignKey("marketing_contact.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_marketing_segment_pending_contact", "marketing_segment_pending", ["contact_id"]
    )
    op.add_column(
        "marketing_segment",
        sa.Column("event_types", sa.ARRAY(sa.String(128)), nullable=False, server_default="{}"),
    )
    # Segments made before this revision: their filters' event types.
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, filter FROM marketing_segment WHERE has_events"))
    for segment_id, document in rows.all():
        bind.execute(
            sa.text("UPDATE marketing_segment SET event_types = :types WHERE id = :id"),
            {"types": sorted(_event_types(document)), "id": segment_id},
        )


def _event_types(document: Any) -> set[str]:
    """The `event` of every condition's subject in a stored filter tree
    (`{"and"|"or": [...]}` groups, `{"subject": {...}, ...}` conditions)."""
    if isinstance(document, dict):
        if "subject" in document:
            event = document["subject"].get("event")
            return {event} if isinstance(event, str) else set()
        children: list[Any] = document.get("and") or document.get("or") or []
        return set().union(*(_event_types(child) for child in children))
    return set()


def downgrade() -> None:
    op.drop_column("marketing_segment", "event_types")
    op.drop_table("marketing_segment_pending")
