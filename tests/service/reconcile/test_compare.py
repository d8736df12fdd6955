"""The comparison rules of ReconcileContact (service/reconcile/compare.py), one by one."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from marketing.bus.v1 import bus_pb2
from marketing_runtime.timestamps import to_timestamp

from service.reconcile.compare import (
    Aspect,
    Difference,
    compare,
    expected_consent,
    held_back,
    repaired_aspects,
    same_json,
)
from service.reconcile.rules import NOBODY

EMAIL = "ada@example.com"
WHEN = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def contact(**fields: object) -> bus_pb2.ContactUpserted:
    custom = fields.pop("custom", None)
    message = bus_pb2.ContactUpserted(email=EMAIL, **fields)  # type: ignore[arg-type]
    if custom is not None:
        message.custom_properties_json = orjson.dumps(custom)
    return message


def state(
    email: bool = False,
    sms: bool = False,
    *,
    phone: str | None = None,
    member: bool = False,
    suppressed: bool = False,
) -> bus_pb2.ConsentState:
    return bus_pb2.ConsentState(
        email=EMAIL,
        phone=phone,
        opt_in=bus_pb2.OptIn(email=email, sms=sms),
        newsletter_member=member,
        suppressed=suppressed,
    )


def held(
    profile: bus_pb2.ContactUpserted | None = None, **consent: object
) -> bus_pb2.ProviderPersonRead:
    values = {"email_marketing": False, "sms_marketing": False, **consent}
    return bus_pb2.ProviderPersonRead(
        email=EMAIL,
        provider_id="01P",
        profile=profile or contact(),
        **values,  # type: ignore[arg-type]
    )


def fields_of(differences: list[Difference]) -> list[str]:
    return [d.field for d in differences]


def test_the_same_person_has_no_differences() -> None:
    ours = contact(first_name="Ada", order_count=3, custom={"vip": True})
    assert compare(ours, state(email=True), held(ours, email_marketing=True)) == []


def test_a_field_we_hold_differs_when_the_provider_holds_another_value_or_none() -> None:
    ours = contact(first_name="Ada", last_name="Lovelace", loyalty_tier="gold")
    theirs = contact(first_name="Augusta", loyalty_tier="gold")
    found = compare(ours, state(), held(theirs))
    assert found == [
        Difference("first_name", "Ada", "Augusta", Aspect.PROFILE),
        Difference("last_name", "Lovelace", None, Aspect.PROFILE),
    ]


def test_a_field_only_the_provider_holds_is_not_ours_to_correct() -> None:
    theirs = contact(first_name="Ada", phone="+15005550006", custom={"klaviyo_own": 1})
    assert compare(contact(first_name="Ada"), state(), held(theirs)) == []


def test_times_compare_to_the_microsecond() -> None:
    ours = contact()
    ours.registration_time.CopyFrom(to_timestamp(WHEN))
    same, later = contact(), contact()
    same.registration_time.CopyFrom(to_timestamp(WHEN))
    later.registration_time.CopyFrom(to_timestamp(WHEN.replace(microsecond=123457)))
    assert compare(ours, state(), held(same)) == []
    assert compare(ours, state(), held(later)) == [
        Difference("registration_time", WHEN.isoformat(), later_iso(later), Aspect.PROFILE)
    ]


def later_iso(message: bus_pb2.ContactUpserted) -> str:
    return message.registration_time.ToDatetime(tzinfo=UTC).isoformat()


def test_amounts_compare_as_the_provider_receives_them_with_their_currency() -> None:
    ours = contact(lifetime_value=bus_pb2.Money(currency_code="EUR", units=19, nanos=990_000_000))
    same = contact(lifetime_value=bus_pb2.Money(currency_code="EUR", units=19, nanos=990_000_000))
    other_currency = contact(
        lifetime_value=bus_pb2.Money(currency_code="USD", units=19, nanos=990_000_000)
    )
    assert compare(ours, state(), held(same)) == []
    [difference] = compare(ours, state(), held(other_currency))
    assert difference.field == "lifetime_value"
    assert difference.ours == {"currency_code": "EUR", "amount": "19.99"}
    assert difference.provider == {"currency_code": "USD", "amount": "19.99"}


def test_custom_properties_compare_key_by_key_as_json() -> None:
    ours = contact(custom={"vip": True, "score": 1, "tags": ["a"], "gone": "x"})
    theirs = contact(custom={"vip": 1, "score": 1.0, "tags": ["a"], "extra": 2})
    found = compare(ours, state(), held(theirs))
    assert found == [
        Difference("custom_properties.gone", "x", None, Aspect.PROFILE),
        Difference("custom_properties.vip", True, 1, Aspect.PROFILE),
    ]


def test_same_json_keeps_booleans_apart_from_numbers() -> None:
    assert same_json(1, 1.0)
    assert not same_json(True, 1)
    assert not same_json({"a": [1]}, {"a": [1], "b": None})
    assert same_json({"a": [1, {"b": "c"}]}, {"a": [1.0, {"b": "c"}]})
    assert not same_json("1", 1)


def test_consent_differs_by_channel() -> None:
    found = compare(contact(), state(email=True), held(email_marketing=False))
    assert found == [Difference("email_opt_in", True, False, Aspect.CONSENT)]


def test_a_suppressed_address_should_be_unsubscribed_everywhere_whatever_was_recorded() -> None:
    ours = state(email=True, sms=True, phone="+15005550006", suppressed=True)
    assert expected_consent(ours) == {
        "email_marketing": False,
        "sms_marketing": False,
        "newsletter_member": False,
    }
    found = compare(contact(), ours, held(email_marketing=True, suppressed=False))
    assert fields_of(found) == ["email_opt_in", "suppressed"]


def test_sms_is_compared_only_when_we_hold_a_phone() -> None:
    assert compare(contact(), state(sms=True), held(sms_marketing=False)) == []
    with_phone = state(sms=True, phone="+15005550006")
    assert fields_of(compare(contact(), with_phone, held(sms_marketing=False))) == ["sms_opt_in"]


def test_a_channel_the_provider_says_nothing_about_is_skipped() -> None:
    silent = bus_pb2.ProviderPersonRead(email=EMAIL, profile=contact())
    assert compare(contact(), state(email=True), silent) == []


def test_a_member_reachable_on_a_granted_channel_should_be_in_the_list() -> None:
    member = state(email=True, member=True)
    assert fields_of(
        compare(contact(), member, held(email_marketing=True, newsletter_member=False))
    ) == ["newsletter_member"]
    # No list configured: the provider does not say, nothing to compare.
    assert compare(contact(), member, held(email_marketing=True)) == []
    # A member without a granted channel is never added to the list by our calls.
    withdrawn = state(email=False, member=True)
    assert compare(contact(), withdrawn, held(newsletter_member=False)) == []


def test_a_list_membership_we_do_not_hold_is_not_reported() -> None:
    assert (
        compare(contact(), state(email=True), held(email_marketing=True, newsletter_member=True))
        == []
    )


def test_a_person_the_provider_does_not_hold_differs_in_every_field_we_hold() -> None:
    ours = contact(first_name="Ada", custom={"vip": True})
    found = compare(ours, state(email=True), NOBODY)
    assert fields_of(found) == ["first_name", "custom_properties.vip", "email_opt_in"]
    assert {d.aspect for d in found} == {Aspect.PROFILE, Aspect.CONSENT}


def test_a_withdrawal_only_the_provider_holds_is_reported_but_not_re_granted() -> None:
    # Unsubscribed by the provider's link before its webhook reached us: our grant is older
    # for all we know, so no consent repair goes; the profile is repaired as before.
    ours = contact(first_name="Ada")
    for provider in (
        held(contact(first_name="Augusta"), email_marketing=False, newsletter_member=False),
        held(contact(first_name="Augusta"), email_marketing=True, suppressed=True),
    ):
        differences = compare(ours, state(email=True, member=True), provider)
        held_fields = held_back(differences, provider_holds=True)
        consent_fields = {d.field for d in differences if d.aspect is Aspect.CONSENT}
        assert consent_fields and held_fields == consent_fields
        assert repaired_aspects(differences, held_fields) == {Aspect.PROFILE}


def test_a_sms_withdrawal_at_the_provider_holds_back_the_email_repair_too() -> None:
    # One consent repair sends the whole state: re-sending email would re-grant SMS.
    provider = held(email_marketing=False, sms_marketing=False)
    differences = compare(contact(), state(email=True, sms=True, phone="+15005550006"), provider)
    assert held_back(differences, provider_holds=True) == {"email_opt_in", "sms_opt_in"}


def test_consent_the_provider_grants_beyond_ours_is_still_withdrawn_there() -> None:
    # Withdrawn by us, granted there: our withdrawal is the one to keep.
    differences = compare(contact(), state(member=False), held(email_marketing=True))
    assert fields_of(differences) == ["email_opt_in"]
    held_fields = held_back(differences, provider_holds=True)
    assert held_fields == frozenset()
    assert repaired_aspects(differences, held_fields) == {Aspect.CONSENT}


def test_a_person_the_provider_does_not_hold_is_created_with_our_consent() -> None:
    differences = compare(contact(first_name="Ada"), state(email=True), NOBODY)
    held_fields = held_back(differences, provider_holds=False)
    assert held_fields == frozenset()
    assert repaired_aspects(differences, held_fields) == {Aspect.PROFILE, Aspect.CONSENT}
