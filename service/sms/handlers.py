"""SMS RPCs: request messages to the SMS rules and back."""

from __future__ import annotations

from marketing.v1 import service_pb2 as pb
from marketing_runtime.clock import Clock

from service.sms import rules
from service.storage.database import Database


class SmsHandlers:
    def __init__(self, db: Database, *, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def opt_out_sms(self, request: pb.OptOutSmsRequest) -> pb.OptOutSmsResponse:
        done = await rules.opt_out(
            self._db, phone_number=request.phone_number, source=request.source, clock=self._clock
        )
        return pb.OptOutSmsResponse(changed=done.changed, contacts=done.contacts)
