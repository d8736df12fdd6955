"""The decision probes' plans when PostgreSQL's statistics have not seen a flow yet
(its first large restock, a new flow): each trigger and each person is one index
probe by its own key, never a walk through the flow's enrolments, which made a
100,000-person restock slow down as it went. Read from EXPLAIN on a real server."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.flows.enrolments import _DECIDED, _PRIORS
from tests.harness import own_database

_CONTACTS = """
INSERT INTO marketing_contact (id, email, custom_properties, email_opt_in, sms_opt_in,
    push_opt_in, created_at, updated_at)
SELECT md5('probe-' || n)::uuid, 'probe.' || n || '@example.com', '{}', true, false, false,
       now(), now()
FROM generate_series(1, :n) AS n
"""
_ENROLMENTS = """
INSERT INTO marketing_enrolment (id, flow_id, contact_id, state, entry_key, trigger_ref,
    cause_kind, cause_ref, created_at)
SELECT gen_random_uuid(), CAST(:flow AS text), md5('probe-' || n)::uuid, 'ACTIVE', '',
       CAST(:flow AS text) || ':' || n, 'event', '', now()
FROM generate_series(1, :n) AS n
"""


def test_probes_go_by_trigger_and_person_for_a_flow_the_statistics_do_not_know(
    database_url: str,
) -> None:
    async def plans(url: str) -> tuple[str, str]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text(_CONTACTS), {"n": 5_000})
                await connection.execute(text(_ENROLMENTS), {"flow": "cart-recovery", "n": 5_000})
            async with engine.begin() as connection:
                await connection.execute(text("ANALYZE marketing_enrolment"))
            async with engine.begin() as connection:  # after the statistics were taken
                await connection.execute(text(_ENROLMENTS), {"flow": "back-in-stock", "n": 5_000})
                refs = [f"back-in-stock:{n}" for n in range(1, 2_001)]
                ids = [uuid.uuid4() for _ in range(2_000)]
                decided = await connection.execute(
                    text(f"EXPLAIN {_DECIDED.text}"), {"refs": refs, "flow": "back-in-stock"}
                )
                priors = await connection.execute(
                    text(f"EXPLAIN {_PRIORS.text}"), {"ids": ids, "flow": "back-in-stock"}
                )
                return (
                    "\n".join(row[0] for row in decided),
                    "\n".join(row[0] for row in priors),
                )
        finally:
            await engine.dispose()

    with own_database(database_url, "probes") as url:
        decided, priors = asyncio.run(plans(url))
    assert "uq_marketing_enrolment_trigger" in decided, decided
    assert "ix_marketing_enrolment_contact" in priors, priors
    for plan in (decided, priors):
        assert "ix_marketing_enrolment_flow_created" not in plan, plan
        assert "Seq Scan on marketing_enrolment" not in plan, plan
