"""The comparison rules of ReconcileContact: our contact against the person the
provider holds, field by field. Pure: no database, no bus.

What counts as a difference is what our own delivery would change, so that a
repair makes the next comparison come out clean:

- Profile fields and custom properties: only those we hold. A profile upsert
  sends the fields we hold and leaves the others (and properties set by anyone
  else) as the provider has them, so a value the provider holds where we hold
  none is not ours to correct. Amounts are compared as the provider receives
  them, JSON numbers.
- Consent: what the provider should hold by our records. Email (and SMS, when
  we hold a phone; without one the provider has no SMS channel of ours) is
  granted when our newest record grants it and the address is not suppressed:
  an unsubscribe-suppression withdraws every channel at the provider, whatever
  was recorded since. A channel the provider says nothing about is skipped.
- Suppression: the provider's own suppression (the one our unsuppress lifts),
  against our suppression list.
- Newsletter: when by our records the person should be in the newsletter list
  (a member, not suppressed, reachable on a granted channel) and the provider
  says they are not. The other way round is not reported: our consent calls
  never take anyone out of a list, and withdrawn consent already keeps the
  provider from sending.

A withdrawal only the provider holds (email or SMS consent withdrawn, or the
address suppressed, where our records grant it) is reported but not repaired
(`held_back`): the person may have used the provider's unsubscribe link before
its webhook reached us, and a read does not say when the provider's change was
made, so our older grant must not re-subscribe them. A consent repair sends the
whole consent state, so no consent difference is repaired then. (A read does not
tell a withdrawal from a grant that never arrived either: recording the consent
again sends it.) A person the provider does not hold is created with our consent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson
from google.protobuf.message import Message
from marketing.bus.v1 import bus_pb2
from marketing_runtime.money import amount
from marketing_runtime.timestamps import timestamp_micros, to_datetime

CUSTOM_PREFIX = "custom_properties."


class Aspect(Enum):
    """What a difference is about, and so which of our deliveries repairs it."""

    PROFILE = "profile"  # repaired by a ContactUpserted
    CONSENT = "consent"  # repaired by a ConsentChanged


@dataclass(frozen=True)
class Difference:
    """`field` is the API Contact's field (or `custom_properties.<key>`); `ours` and
    `provider` are JSON values (None: no value)."""

    field: str
    ours: Any
    provider: Any
    aspect: Aspect


# The ContactUpserted fields a profile upsert sends, by the API Contact field
# they come from (the same names).
TEXT_FIELDS = (
    "user_id",
    "first_name",
    "last_name",
    "phone",
    "loyalty_tier",
    "location",
    "language",
    "timezone",
)
TIME_FIELDS = ("registration_time", "last_purchase_time")


def compare(
    ours: bus_pb2.ContactUpserted,
    consent: bus_pb2.ConsentState,
    provider: bus_pb2.ProviderPersonRead,
) -> list[Difference]:
    """Every difference, profile fields first, in a stable order."""
    return [
        *profile_differences(ours, provider.profile),
        *custom_differences(ours, provider.profile),
        *consent_differences(consent, provider),
    ]


def profile_differences(
    ours: bus_pb2.ContactUpserted, theirs: bus_pb2.ContactUpserted
) -> list[Difference]:
    found = []
    for name in (*TEXT_FIELDS, "order_count"):
        if ours.HasField(name) and (
            not theirs.HasField(name) or getattr(ours, name) != getattr(theirs, name)
        ):
            found.append(_profile(name, getattr(ours, name), _value(theirs, name)))
    for name in TIME_FIELDS:
        if ours.HasField(name) and (
            not theirs.HasField(name)
            or timestamp_micros(getattr(ours, name)) != timestamp_micros(getattr(theirs, name))
        ):
            found.append(_profile(name, _time(ours, name), _time(theirs, name)))
    if ours.HasField("lifetime_value") and not _same_money(ours, theirs):
        found.append(_profile("lifetime_value", _money(ours), _money(theirs)))
    return found


def custom_differences(
    ours: bus_pb2.ContactUpserted, theirs: bus_pb2.ContactUpserted
) -> list[Difference]:
    mine, held = _custom(ours), _custom(theirs)
    return [
        _profile(f"{CUSTOM_PREFIX}{key}", value, held.get(key))
        for key, value in sorted(mine.items())
        if key not in held or not same_json(value, held[key])
    ]


def consent_differences(
    consent: bus_pb2.ConsentState, provider: bus_pb2.ProviderPersonRead
) -> list[Difference]:
    found = []
    expected = expected_consent(consent)
    for field, channel in (("email_opt_in", "email_marketing"), ("sms_opt_in", "sms_marketing")):
        wanted, held = expected[channel], _value(provider, channel)
        if wanted is not None and held is not None and held != wanted:
            found.append(_consent(field, wanted, held))
    if consent.suppressed != provider.suppressed:
        found.append(_consent("suppressed", consent.suppressed, provider.suppressed))
    if expected["newsletter_member"] and _value(provider, "newsletter_member") is False:
        found.append(_consent("newsletter_member", True, False))
    return found


WITHDRAWN_AT_PROVIDER = (
    "withdrawn at the provider, not by our records: not re-granted (the person may have"
    " unsubscribed there before its webhook reached us); record the consent to settle it"
)


def held_back(differences: list[Difference], *, provider_holds: bool) -> frozenset[str]:
    """The fields whose repair is held back: every consent difference when the
    provider holds the person with a withdrawal our records do not (see the
    module's docstring). A person it does not hold withdrew nothing there."""
    if not provider_holds or not any(_withdrawn_at_provider(d) for d in differences):
        return frozenset()
    return frozenset(d.field for d in differences if d.aspect is Aspect.CONSENT)


def repaired_aspects(differences: list[Difference], held: frozenset[str]) -> set[Aspect]:
    """What the repair of these differences delivers: each aspect of a difference
    whose repair is not `held` back."""
    return {d.aspect for d in differences if d.field not in held}


def _withdrawn_at_provider(difference: Difference) -> bool:
    if difference.field in ("email_opt_in", "sms_opt_in"):
        return difference.ours is True and difference.provider is False
    return difference.field == "suppressed" and difference.provider is True


def expected_consent(consent: bus_pb2.ConsentState) -> dict[str, bool | None]:
    """What the provider should hold after our delivery of `consent` (None: a
    channel we do not hold, whose consent is not ours to check)."""
    open_to_marketing = not consent.suppressed
    email = consent.opt_in.email and open_to_marketing
    sms = consent.opt_in.sms and open_to_marketing if consent.HasField("phone") else None
    return {
        "email_marketing": email,
        "sms_marketing": sms,
        "newsletter_member": consent.newsletter_member and bool(email or sms),
    }


def same_json(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value (1 == 1.0), but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _profile(field: str, ours: Any, provider: Any) -> Difference:
    return Difference(field, ours, provider, Aspect.PROFILE)


def _consent(field: str, ours: Any, provider: Any) -> Difference:
    return Difference(field, ours, provider, Aspect.CONSENT)


def _value(message: Message, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def _time(message: Message, name: str) -> str | None:
    if not message.HasField(name):
        return None
    return to_datetime(getattr(message, name)).isoformat()


def _custom(message: bus_pb2.ContactUpserted) -> dict[str, Any]:
    if not message.custom_properties_json:
        return {}
    loaded = orjson.loads(message.custom_properties_json)
    return loaded if isinstance(loaded, dict) else {}


def _same_money(ours: bus_pb2.ContactUpserted, theirs: bus_pb2.ContactUpserted) -> bool:
    """As the provider receives it: the amount as a JSON number, and the currency when
    we hold one (without one, the upsert leaves the provider's as it is)."""
    if not theirs.HasField("lifetime_value"):
        return False
    a, b = ours.lifetime_value, theirs.lifetime_value
    same_currency = not a.currency_code or a.currency_code == b.currency_code
    return same_currency and float(amount(a)) == float(amount(b))


def _money(message: bus_pb2.ContactUpserted) -> dict[str, Any] | None:
    if not message.HasField("lifetime_value"):
        return None
    money = message.lifetime_value
    return {"currency_code": money.currency_code, "amount": str(amount(money))}
