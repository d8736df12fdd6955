"""provider catalogue: the campaign cache (marketing_campaign_cache, empty until now) keeps
the provider's campaigns and flows as the dispatcher reads them: whose they are, the
provider's own status, a campaign's send time, a flow's trigger; a campaign and a flow may
share an id (ActiveCampaign numbers each from 1), so an id is unique per type

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "marketing_campaign_cache"


def upgrade() -> None:
    op.add_column(_TABLE, sa.Column("provider", sa.String(32), nullable=False, server_default=""))
    op.add_column(
        _TABLE, sa.Column("provider_status", sa.String(64), nullable=False, server_default="")
    )
    op.add_column(_TABLE, sa.Column("send_time", sa.DateTime(timezone=True)))
    op.add_column(
        _TABLE, sa.Column("trigger_type", sa.String(64), nullable=False, server_default="")
    )
    op.drop_constraint("marketing_campaign_cache_external_id_key", _TABLE, type_="unique")
    op.create_unique_constraint(
        "uq_campaign_cache_type_external_id", _TABLE, ["type", "external_id"]
    )
    # The lists' order (first cached first).
    op.create_index("ix_campaign_cache_created", _TABLE, ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_campaign_cache_created", table_name=_TABLE)
    op.drop_constraint("uq_campaign_cache_type_external_id", _TABLE, type_="unique")
    op.execute(sa.text(f"DELETE FROM {_TABLE} WHERE type = 'FLOW'"))  # ids may now repeat
    op.create_unique_constraint("marketing_campaign_cache_external_id_key", _TABLE, ["external_id"])
    for column in ("trigger_type", "send_time", "provider_status", "provider"):
        op.drop_column(_TABLE, column)
