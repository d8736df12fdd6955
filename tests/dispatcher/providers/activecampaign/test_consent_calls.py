"""The consent plan for ActiveCampaign: record, list statuses, unsuppress or suppress, for
every person, in that order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dispatcher.providers.activecampaign import consent_calls
from dispatcher.providers.activecampaign.consent_calls import Lists, ListStatuses
from dispatcher.providers.base import ConsentChange, ConsentState

LISTS = Lists(newsletter="3", sms="9")


def state(
    email: bool | None = True,
    sms: bool | None = None,
    *,
    phone: str | None = None,
    member: bool = False,
    suppressed: bool = False,
) -> ConsentState:
    change = ConsentChange("ada@example.com", phone, email, sms)
    return ConsentState(change, newsletter_member=member, suppressed=suppressed)


def test_a_consenting_member_is_subscribed_to_the_newsletter() -> None:
    planned = consent_calls.plan([("a", state(member=True))], LISTS)

    assert planned.record == [("a", state(member=True))]
    assert planned.lists == [("a", ListStatuses("ada@example.com", (("3", 1),)))]
    assert planned.unsuppress == [("a", "ada@example.com")]
    assert planned.suppress == []


def test_a_member_without_email_consent_is_unsubscribed() -> None:
    planned = consent_calls.plan([("a", state(False, member=True))], LISTS)

    assert planned.lists == [("a", ListStatuses("ada@example.com", (("3", 2),)))]


def test_a_suppressed_person_is_tagged_and_unsubscribed_from_both_lists() -> None:
    suppressed = state(True, True, phone="+1555", member=True, suppressed=True)

    planned = consent_calls.plan([("a", suppressed)], LISTS)

    assert planned.lists == [("a", ListStatuses("ada@example.com", (("3", 2), ("9", 2))))]
    assert planned.suppress == [("a", "ada@example.com")]
    assert planned.unsuppress == []


def test_sms_consent_goes_on_the_sms_list_only_with_a_phone() -> None:
    with_phone = consent_calls.plan([("a", state(None, True, phone="+1555"))], LISTS)
    without = consent_calls.plan([("a", state(None, True))], LISTS)

    assert with_phone.lists == [("a", ListStatuses("ada@example.com", (("3", 2), ("9", 1))))]
    assert without.lists == [("a", ListStatuses("ada@example.com", (("3", 2),)))]


def test_without_lists_consent_is_only_recorded() -> None:
    planned = consent_calls.plan([("a", state(member=True))], Lists())

    assert planned.lists == []
    assert len(planned.record) == 1


def test_the_record_names_only_the_channels_set() -> None:
    assert consent_calls.record_fields(state(True, None, member=True)) == {
        "newsletter_member": "true",
        "email_marketing_consent": "granted",
    }
    assert consent_calls.record_fields(state(False, False)) == {
        "newsletter_member": "false",
        "email_marketing_consent": "withdrawn",
        "sms_marketing_consent": "withdrawn",
    }


states = st.builds(
    state,
    st.sampled_from([True, False, None]),
    st.sampled_from([True, False, None]),
    phone=st.sampled_from([None, "+1555"]),
    member=st.booleans(),
    suppressed=st.booleans(),
)


@given(st.lists(states, max_size=6))
def test_every_person_is_recorded_and_either_suppressed_or_unsuppressed(
    people: list[ConsentState],
) -> None:
    owned = list(enumerate(people))

    planned = consent_calls.plan(owned, LISTS)

    assert [owner for owner, _ in planned.record] == [owner for owner, _ in owned]
    suppressed = {owner for owner, _ in planned.suppress}
    unsuppressed = {owner for owner, _ in planned.unsuppress}
    assert suppressed == {owner for owner, s in owned if s.suppressed}
    assert unsuppressed == {owner for owner, s in owned if not s.suppressed}
    for owner, change in planned.lists:
        person = people[owner]
        newsletter = dict(change.statuses)["3"]
        mailable = (
            person.newsletter_member and person.change.email_marketing and not person.suppressed
        )
        assert newsletter == (1 if mailable else 2)
