"""outbox payloads kept uncompressed: `marketing_outbox.payload` is stored out of line
when large, as before, but no longer compressed (STORAGE EXTERNAL).

Why: a payload of more than about 2 KB (a restock's thousand enrolment beginnings is
about 400 KB) was compressed with pglz when written and decompressed when the relay read
it, for a row read once and kept only until pruned (MARKETING_OUTBOX_RETENTION_S, a day).
Measured alone, writing the waitlist's notifications cost PostgreSQL 5.2-5.5 µs a
notification for their outbox rows compressed, against 2.4-2.5 µs uncompressed (README
figure 10). The price is disk and WAL at full size for those rows (about 40 MB a day for
a restock of 100,000 people). Payloads under the TOAST threshold were never compressed,
so most rows are as before. Rows already written keep their form; the setting applies to
what is written next.

The change is to the catalog only (no rewrite). Its ACCESS EXCLUSIVE lock waits for the
outbox's open transactions and is held a moment: outbox writes queue behind it meanwhile.

Revision ID: 0021
Revises: 0020
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE marketing_outbox ALTER COLUMN payload SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE marketing_outbox ALTER COLUMN payload SET STORAGE EXTENDED")
