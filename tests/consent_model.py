"""The consent calls, as the tests send them and as the README says they change a person's state.

Three tests check the service against these rules: the concurrency test replays the outbox
through them, the PostgreSQL restart test expects the state its acknowledged calls leave, and
the consent sync test drives random sequences of them through the whole system. The rules are
written once, here:

- SubscribeNewsletter opts email in, makes the person a newsletter member and lifts the
  suppression; other channels stay.
- Unsubscribe suppresses the address and withdraws everything: every opt-in and the membership.
- RecordConsent sets the one channel it names; membership and suppression stay.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

from google.protobuf.message import Message
from marketing.bus.v1 import bus_pb2
from marketing.v1 import service_pb2 as pb

from tests.builders import consent

SOURCE = "consent-model"


@dataclass(frozen=True)
class ConsentState:
    """What our consent calls decide about one person, in GetContact's terms."""

    email_opt_in: bool = False
    sms_opt_in: bool = False
    push_opt_in: bool = False
    newsletter_member: bool = False
    suppressed: bool = False

    @classmethod
    def of_contact(cls, contact: Any) -> ConsentState:
        """The state a `marketing.v1.Contact` shows."""
        return cls(
            email_opt_in=contact.email_opt_in,
            sms_opt_in=contact.sms_opt_in,
            push_opt_in=contact.push_opt_in,
            newsletter_member=contact.newsletter_member,
            suppressed=contact.suppressed,
        )

    def as_told(self) -> dict[str, Any]:
        """The part of the state a consent outbox payload carries, in its terms."""
        return {
            "opt_in": {
                "email": self.email_opt_in,
                "sms": self.sms_opt_in,
                "push": self.push_opt_in,
            },
            "newsletter_member": self.newsletter_member,
            "suppressed": self.suppressed,
        }


class Operation(Protocol):
    def call(self, stub: Any, email: str, parent: str | None, request_id: str) -> Any:
        """The stub method to call and its request: `method(request)` or `method.future(...)`."""

    def apply(self, state: ConsentState) -> ConsentState:
        """The state the whole call leaves behind, given the one before."""


@dataclass(frozen=True)
class Subscribe:
    def call(self, stub: Any, email: str, parent: str | None, request_id: str) -> Any:
        request = pb.SubscribeNewsletterRequest(email=email, source=SOURCE, request_id=request_id)
        return stub.SubscribeNewsletter, request

    def apply(self, state: ConsentState) -> ConsentState:
        return replace(state, email_opt_in=True, newsletter_member=True, suppressed=False)


@dataclass(frozen=True)
class Unsubscribe:
    def call(self, stub: Any, email: str, parent: str | None, request_id: str) -> Any:
        # UnsubscribeRequest has no request_id: repeating it changes nothing more.
        return stub.Unsubscribe, pb.UnsubscribeRequest(email=email, reason=SOURCE)

    def apply(self, state: ConsentState) -> ConsentState:
        return ConsentState(suppressed=True)


@dataclass(frozen=True)
class Record:
    """RecordConsent of one channel: "EMAIL", "SMS" or "PUSH"."""

    channel: str
    granted: bool

    def call(self, stub: Any, email: str, parent: str | None, request_id: str) -> Any:
        assert parent is not None, "RecordConsent needs an existing contact"
        record = consent(self.channel, granted=self.granted)
        return stub.RecordConsent, pb.RecordConsentRequest(
            parent=parent, consent=record, request_id=request_id
        )

    def apply(self, state: ConsentState) -> ConsentState:
        return replace(state, **{f"{self.channel.lower()}_opt_in": self.granted})


def send(stub: Any, op: Operation, email: str, parent: str | None, request_id: str = "") -> Message:
    """Make the call and wait for its answer (raises grpc.RpcError when refused)."""
    method, request = op.call(stub, email, parent, request_id)
    response: Message = method(request)
    return response


CONSENT_KINDS = ("newsletter.subscribed", "contact.unsubscribed", "consent.changed")


def of_outbox(kind: str, payload: Any) -> Operation:
    """The call that left an outbox row of one of CONSENT_KINDS (`payload` its
    bus message)."""
    if kind == "newsletter.subscribed":
        return Subscribe()
    if kind == "contact.unsubscribed":
        return Unsubscribe()
    (record,) = payload.state.records
    type_name = bus_pb2.ConsentType.Name(record.type).removeprefix("CONSENT_TYPE_")
    return Record(type_name, record.granted)
