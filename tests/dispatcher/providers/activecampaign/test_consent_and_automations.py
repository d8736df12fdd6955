"""Consent (fields, list statuses, the suppression tag) and automation enrolment against the
ActiveCampaign sandbox."""

from __future__ import annotations

import asyncio
from typing import Any

from dispatcher.providers.activecampaign.client import ActiveCampaignClient
from dispatcher.providers.activecampaign.consent_calls import ListStatuses
from dispatcher.providers.activecampaign.http import ApiHttp
from dispatcher.providers.base import ConsentChange, ConsentState, ProviderPerson
from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from tests.dispatcher.providers.activecampaign.conftest import API_KEY, api, paths, with_client
from tests.dispatcher.providers.activecampaign.test_contacts import field_ids, new_list

EMAIL = "ada@example.com"


def consent(
    email: bool | None, sms: bool | None = None, *, member: bool = True, suppressed: bool = False
) -> ConsentState:
    change = ConsentChange(EMAIL, "+15550100", email, sms)
    return ConsentState(change, newsletter_member=member, suppressed=suppressed)


async def apply(
    client: ActiveCampaignClient, states: list[ConsentState], newsletter: str | None
) -> list[str]:
    """Run the planned calls of each state in turn; the operations, in order."""
    operations = []
    for state in states:
        for call in client.plan_consent([("owner", state)], newsletter):
            operations.append(call.operation)
            await call.send(call.owners)
    return operations


def person(sandbox: ActiveCampaignSandbox) -> dict[str, Any]:
    [contact] = sandbox.contacts(EMAIL)
    titles = {v: k for k, v in field_ids(sandbox).items()}
    return contact | {"fields": {titles[i]: text for i, text in contact["fields"].items()}}


def test_a_consenting_member_is_subscribed_and_recorded(ac: ActiveCampaignSandbox) -> None:
    newsletter = api(ac, "POST", "/lists", new_list("Newsletter"))["list"]["id"]

    operations = with_client(ac, lambda c: apply(c, [consent(True, False)], newsletter))

    assert operations == ["consent_record", "list_status", "unsuppress"]
    ada = person(ac)
    assert ada["lists"] == {newsletter: "1"}
    assert ada["fields"] == {
        "newsletter_member": "true",
        "email_marketing_consent": "granted",
        "sms_marketing_consent": "withdrawn",
    }
    assert ada["phone"] == "+15550100"
    assert ada["tags"] == []


def test_suppression_tags_and_unsubscribes_and_lifting_it_untags(
    ac: ActiveCampaignSandbox,
) -> None:
    newsletter = api(ac, "POST", "/lists", new_list("Newsletter"))["list"]["id"]
    sms = api(ac, "POST", "/lists", new_list("SMS"))["list"]["id"]
    states = [consent(True, True), consent(True, True, suppressed=True)]

    with_client(ac, lambda c: apply(c, states, newsletter), sms_list_id=sms)

    suppressed = person(ac)
    assert suppressed["lists"] == {newsletter: "2", sms: "2"}
    assert suppressed["tags"] == ["marketing-suppressed"]

    with_client(ac, lambda c: apply(c, [consent(True, True)], newsletter), sms_list_id=sms)

    lifted = person(ac)
    assert lifted["lists"] == {newsletter: "1", sms: "1"}
    assert lifted["tags"] == []
    assert paths(ac).count("DELETE /api/3/contactTags/1") == 1


def test_suppressing_twice_tags_once_and_the_tag_is_made_once(ac: ActiveCampaignSandbox) -> None:
    states = [consent(False, suppressed=True)] * 2

    with_client(ac, lambda c: apply(c, states, None), suppression_tag="Do Not Mail")

    assert person(ac)["tags"] == ["Do Not Mail"]
    assert paths(ac).count("POST /api/3/tags") == 1
    assert paths(ac).count("POST /api/3/contactTags") == 1


def test_a_tag_made_elsewhere_is_found_ignoring_case(ac: ActiveCampaignSandbox) -> None:
    api(ac, "POST", "/tags", {"tag": {"tag": "MARKETING-SUPPRESSED", "tagType": "contact"}})

    with_client(ac, lambda c: apply(c, [consent(False, suppressed=True)], None))

    assert person(ac)["tags"] == ["MARKETING-SUPPRESSED"]
    assert paths(ac).count("POST /api/3/tags") == 1  # ours above only


def test_a_withdrawn_member_is_unsubscribed_and_reads_back_as_a_member(
    ac: ActiveCampaignSandbox,
) -> None:
    newsletter = api(ac, "POST", "/lists", new_list("Newsletter"))["list"]["id"]

    async def withdraw(client: ActiveCampaignClient) -> ProviderPerson | None:
        await apply(client, [consent(True), consent(False)], newsletter)
        return await client.read_person(EMAIL, newsletter)

    read = with_client(ac, withdraw)

    assert person(ac)["lists"] == {newsletter: "2"}
    assert read is not None
    assert (read.email_marketing, read.newsletter_member, read.suppressed) == (False, True, False)


def test_a_suppressed_person_reads_back_with_every_channel_withdrawn(
    ac: ActiveCampaignSandbox,
) -> None:
    async def suppress_then_read(client: ActiveCampaignClient) -> ProviderPerson | None:
        await apply(client, [consent(True, True, suppressed=True)], None)
        return await client.read_person(EMAIL, None)

    read = with_client(ac, suppress_then_read)

    assert read is not None
    assert (read.email_marketing, read.sms_marketing, read.suppressed) == (False, False, True)
    assert person(ac)["fields"]["email_marketing_consent"] == "granted"  # the record stays


def automation(sandbox: ActiveCampaignSandbox) -> str:
    return sandbox.add_automation("Welcome series")


def test_enrolment_is_made_once_and_removal_ends_it(ac: ActiveCampaignSandbox) -> None:
    welcome = automation(ac)

    async def enrol_twice_then_remove(client: ActiveCampaignClient) -> tuple[str, str, int, int]:
        first = await client.enrol_in_automation(EMAIL, welcome)
        again = await client.enrol_in_automation(EMAIL, welcome)
        removed = await client.remove_from_automation(EMAIL, welcome)
        removed_again = await client.remove_from_automation(EMAIL, welcome)
        return first, again, removed, removed_again

    first, again, removed, removed_again = with_client(ac, enrol_twice_then_remove)

    assert first == again
    assert (removed, removed_again) == (1, 0)
    assert paths(ac).count("POST /api/3/contactAutomations") == 1
    assert person(ac)["automations"] == []


def test_removing_an_unknown_person_from_an_automation_is_done(
    ac: ActiveCampaignSandbox,
) -> None:
    removed = with_client(ac, lambda c: c.remove_from_automation("who@example.com", "1"))

    assert removed == 0
    assert paths(ac) == ["GET /api/3/contacts"]


def test_an_unknown_enrolment_answers_403_which_is_a_miss(ac: ActiveCampaignSandbox) -> None:
    async def delete_unknown() -> object:
        api_http = ApiHttp(ac.base_url, API_KEY, timeout_s=5)
        try:
            return await api_http.call(
                "DELETE", "/contactAutomations/999", operation="remove", allow_missing=True
            )
        finally:
            await api_http.aclose()

    assert asyncio.run(delete_unknown()) is None
    assert ac.rejections()[-1]["status"] == 403


def test_a_contact_erased_elsewhere_is_made_again_for_an_enrolment(
    ac: ActiveCampaignSandbox,
) -> None:
    welcome = automation(ac)

    async def enrol_erase_enrol(client: ActiveCampaignClient) -> None:
        await client.enrol_in_automation(EMAIL, welcome)
        [contact] = ac.contacts(EMAIL)
        api(ac, "DELETE", f"/contacts/{contact['id']}")  # another program erased it
        await client.enrol_in_automation(EMAIL, welcome)

    with_client(ac, enrol_erase_enrol)

    [again] = ac.contacts(EMAIL)
    assert [e["automation"] for e in again["automations"]] == [welcome]


def test_a_contact_erased_by_another_replica_is_looked_up_again_for_consent(
    ac: ActiveCampaignSandbox,
) -> None:
    """The client remembers ada's id; another replica erases her: suppressing her and
    setting her list status find the id gone, forget it, and make the contact again."""
    newsletter = api(ac, "POST", "/lists", new_list("Newsletter"))["list"]["id"]

    async def erased_between(client: ActiveCampaignClient) -> None:
        await apply(client, [consent(True)], newsletter)
        [contact] = ac.contacts(EMAIL)
        api(ac, "DELETE", f"/contacts/{contact['id']}")  # erased by another replica
        await client.suppress([EMAIL])
        api(ac, "DELETE", f"/contacts/{ac.contacts(EMAIL)[0]['id']}")
        await client.set_list_statuses([ListStatuses(EMAIL, ((newsletter, 2),))])

    with_client(ac, erased_between)

    [again] = ac.contacts(EMAIL)
    assert again["lists"] == {newsletter: "2"}
    # The gone id: its tags looked at (a miss) and tagged (404); its list status set (422).
    assert [r["status"] for r in ac.rejections()] == [404, 404, 422]
