"""The ReconcileContact RPC: request to the use case, its differences back as messages."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2
from marketing.v1 import service_pb2 as pb
from marketing_runtime.clock import Clock

from service.contacts.rules import contact_name
from service.reconcile import rules
from service.reconcile.compare import WITHDRAWN_AT_PROVIDER, Difference
from service.reconcile.provider import PersonReader
from service.storage.database import Database


class ReconcileHandlers:
    def __init__(self, db: Database, reader: PersonReader, *, clock: Clock) -> None:
        self._db = db
        self._reader = reader
        self._clock = clock

    async def reconcile_contact(
        self, request: pb.ReconcileContactRequest
    ) -> pb.ReconcileContactResponse:
        lookup = request.WhichOneof("lookup")
        result = await rules.reconcile_contact(
            self._db,
            self._reader,
            name=request.name if lookup == "name" else None,
            email=request.email if lookup == "email" else None,
            now=self._clock(),
        )
        return pb.ReconcileContactResponse(
            name=contact_name(result.contact_id),
            provider_id=result.provider_id,
            differences=[difference_message(d, result) for d in result.differences],
            repair_queued=result.repair_queued,
        )


def difference_message(
    difference: Difference, result: rules.Reconciliation
) -> pb.ContactDifference:
    held = difference.field in result.held_back
    return pb.ContactDifference(
        field=difference.field,
        ours=json_value(difference.ours),
        provider=json_value(difference.provider),
        repair_queued=result.repair_queued and not held,
        note=WITHDRAWN_AT_PROVIDER if held else "",
    )


def json_value(value: Any) -> struct_pb2.Value:
    """A JSON value (None, bool, number, text, list, object) as a protobuf Value."""
    holder = struct_pb2.Struct()
    holder.update({"v": value})
    return holder.fields["v"]
