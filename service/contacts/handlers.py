"""Contact RPCs: request messages to contact use cases, contact views back to messages."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from marketing.v1 import common_pb2, contact_pb2
from marketing.v1 import service_pb2 as pb
from marketing_runtime.clock import Clock

from service.common.conversions import optional, optional_time, struct_to_dict, timestamp
from service.common.pagination import PageTokens
from service.contacts import rules
from service.contacts.rules import ContactFields, ContactView, Money, contact_name
from service.storage.database import Database

_NANOS = Decimal(1_000_000_000)
# Optional fields copied as they are, both ways.
_PLAIN_IN = (
    "user_id",
    "first_name",
    "last_name",
    "phone",
    "loyalty_tier",
    "order_count",
    "location",
    "language",
    "timezone",
)
_TEXT_OUT = tuple(name for name in _PLAIN_IN if name != "order_count")


class ContactHandlers:
    def __init__(
        self, db: Database, tokens: PageTokens, *, clock: Clock, max_clock_skew: timedelta
    ) -> None:
        self._db = db
        self._tokens = tokens
        self._clock = clock
        self._skew = max_clock_skew

    async def upsert_contact(self, request: pb.UpsertContactRequest) -> pb.UpsertContactResponse:
        fields = contact_fields(request.contact)
        view, created = await rules.upsert_contact(
            self._db, fields, now=self._clock(), skew=self._skew
        )
        return pb.UpsertContactResponse(contact=contact_message(view), created=created)

    async def get_contact(self, request: pb.GetContactRequest) -> pb.GetContactResponse:
        lookup = request.WhichOneof("lookup")
        view = await rules.get_contact(
            self._db,
            name=request.name if lookup == "name" else None,
            email=request.email if lookup == "email" else None,
        )
        return pb.GetContactResponse(contact=contact_message(view))

    async def list_contacts(self, request: pb.ListContactsRequest) -> pb.ListContactsResponse:
        page = await rules.list_contacts(
            self._db, self._tokens, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListContactsResponse(
            contacts=[contact_message(view) for view in page.contacts],
            next_page_token=page.next_page_token,
        )

    async def delete_contact(self, request: pb.DeleteContactRequest) -> pb.DeleteContactResponse:
        await rules.delete_contact(self._db, name=request.name, now=self._clock())
        return pb.DeleteContactResponse()


def contact_fields(c: contact_pb2.Contact) -> ContactFields:
    money = None
    if c.HasField("lifetime_value"):
        lv = c.lifetime_value
        money = Money(lv.currency_code, lv.units, lv.nanos)
    return ContactFields(
        email=c.email,
        registration_time=optional_time(c, "registration_time", "contact.registration_time"),
        last_purchase_time=optional_time(c, "last_purchase_time", "contact.last_purchase_time"),
        lifetime_value=money,
        custom_properties=struct_to_dict(c.custom_properties, "contact.custom_properties"),
        **{name: optional(c, name) for name in _PLAIN_IN},
    )


def money_message(amount: Decimal | None, currency: str | None) -> common_pb2.Money | None:
    if amount is None or currency is None:
        return None
    units = int(amount)
    nanos = int((amount - units) * _NANOS)
    return common_pb2.Money(currency_code=currency, units=units, nanos=nanos)


def contact_message(view: ContactView) -> contact_pb2.Contact:
    msg = contact_pb2.Contact(
        name=contact_name(view.id),
        email=view.email,
        order_count=view.order_count,
        lifetime_value=money_message(view.lifetime_value, view.lifetime_value_currency),
        registration_time=timestamp(view.registration_time),
        last_purchase_time=timestamp(view.last_purchase_time),
        email_opt_in=view.email_opt_in,
        sms_opt_in=view.sms_opt_in,
        push_opt_in=view.push_opt_in,
        newsletter_member=view.newsletter_member,
        suppressed=view.suppressed,
        external_id=view.external_id or "",
        create_time=timestamp(view.created_at),
        update_time=timestamp(view.updated_at),
        last_sync_time=timestamp(view.last_sync_at),
        **{name: getattr(view, name) for name in _TEXT_OUT},
    )
    msg.custom_properties.update(view.custom_properties)
    return msg
