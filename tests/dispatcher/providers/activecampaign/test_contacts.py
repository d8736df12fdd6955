"""ActiveCampaignClient against the sandbox over HTTP: contacts and custom fields, erasure,
read-back."""

from __future__ import annotations

from dispatcher.providers.activecampaign.client import ActiveCampaignClient
from dispatcher.providers.base import ConsentChange, ConsentState, Profile, ProviderPerson
from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from tests.dispatcher.providers.activecampaign.conftest import api, client_on, paths, with_client

ADA = Profile(
    email="ada@example.com",
    external_id="user-1",
    phone="+447700900123",
    first_name="Ada",
    last_name="Lovelace",
    location="London, UK",
    properties={"tier": "gold", "order_count": 3},
)


def field_ids(sandbox: ActiveCampaignSandbox) -> dict[str, str]:
    return {f["title"]: f["id"] for f in api(sandbox, "GET", "/fields?limit=100")["fields"]}


def test_a_profile_is_synced_with_its_properties_in_custom_fields(
    ac: ActiveCampaignSandbox,
) -> None:
    contact_id = with_client(ac, lambda c: c.upsert_profile(ADA))

    [contact] = ac.contacts("ada@example.com")
    ids = field_ids(ac)
    assert contact["id"] == contact_id
    assert (contact["firstName"], contact["lastName"], contact["phone"]) == (
        "Ada",
        "Lovelace",
        "+447700900123",
    )
    assert contact["fields"] == {
        ids["tier"]: "gold",
        ids["order_count"]: "3",
        ids["external_id"]: "user-1",
        ids["location"]: "London, UK",
    }
    headers = ac.requests("/api/3/contact/sync")[0]["headers"]
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "marketing-automation-dispatcher/0.1"


def test_fields_are_created_once_and_their_ids_remembered(ac: ActiveCampaignSandbox) -> None:
    async def twice(client: ActiveCampaignClient) -> tuple[str, str]:
        first = await client.upsert_profile(ADA)
        again = await client.upsert_profile(Profile(email="ADA@example.com", first_name="Ada L."))
        return first, again

    first, again = with_client(ac, twice)

    assert first == again
    assert paths(ac).count("POST /api/3/fields") == 4
    assert paths(ac).count("POST /api/3/fieldRels") == 4
    assert paths(ac).count("GET /api/3/fields") == 1
    assert paths(ac)[-1] == "POST /api/3/contact/sync"
    assert ac.contacts("ada@example.com")[0]["firstName"] == "Ada L."


def test_a_field_made_elsewhere_is_found_not_made_again(ac: ActiveCampaignSandbox) -> None:
    made = api(ac, "POST", "/fields", {"field": {"title": "tier", "type": "text"}})

    with_client(
        ac, lambda c: c.upsert_profile(Profile("bob@example.com", properties={"tier": "x"}))
    )

    field_id = made["field"]["id"] if "field" in made else made["fields"][0]["id"]
    assert ac.contacts("bob@example.com")[0]["fields"] == {field_id: "x"}
    assert paths(ac)[1:] == ["GET /api/3/fields", "POST /api/3/contact/sync"]


def test_a_field_whose_title_differs_only_in_case_is_taken(ac: ActiveCampaignSandbox) -> None:
    made = api(ac, "POST", "/fields", {"field": {"title": "Tier", "type": "text"}})
    field_id = made["field"]["id"] if "field" in made else made["fields"][0]["id"]

    async def write_then_read(client: ActiveCampaignClient) -> ProviderPerson | None:
        await client.upsert_profile(Profile("bob@example.com", properties={"tier": "x"}))
        return await client.read_person("bob@example.com", None)

    person = with_client(ac, write_then_read)

    assert ac.contacts("bob@example.com")[0]["fields"] == {field_id: "x"}
    assert person is not None
    assert person.profile.properties == {"tier": "x"}


def test_unset_and_empty_values_are_never_sent(ac: ActiveCampaignSandbox) -> None:
    with_client(ac, lambda c: c.upsert_profile(ADA))
    sparse = Profile(email="ada@example.com", first_name="", properties={"tier": "", "x": None})

    with_client(ac, lambda c: c.upsert_profile(sparse))

    assert ac.requests("/api/3/contact/sync")[-1]["body"] == {
        "contact": {"email": "ada@example.com"}
    }
    [contact] = ac.contacts("ada@example.com")
    assert contact["firstName"] == "Ada"
    assert "gold" in contact["fields"].values()


def test_erasure_deletes_the_contact_and_an_unknown_one_is_done(
    ac: ActiveCampaignSandbox,
) -> None:
    with_client(ac, lambda c: c.upsert_profile(ADA))

    with_client(ac, lambda c: c.request_erasure("Ada@Example.com"))
    with_client(ac, lambda c: c.request_erasure("ada@example.com"))

    assert ac.contacts() == []
    assert paths(ac).count("DELETE /api/3/contacts/1") == 1


def test_a_person_is_read_back_as_synced_with_consent_and_suppression(
    ac: ActiveCampaignSandbox,
) -> None:
    newsletter = api(ac, "POST", "/lists", new_list("Newsletter"))["list"]["id"]
    state = ConsentState(
        ConsentChange("ada@example.com", "+447700900123", True, False),
        newsletter_member=True,
        suppressed=False,
    )

    async def sync_then_read(client: ActiveCampaignClient) -> ProviderPerson | None:
        await client.upsert_profile(ADA)
        for call in client.plan_consent([("ada", state)], newsletter):
            await call.send(call.owners)
        return await client.read_person("ada@example.com", newsletter)

    person = with_client(ac, sync_then_read)

    assert person is not None
    assert person.provider_id == "1"
    assert person.profile == Profile(
        email="ada@example.com",
        external_id="user-1",
        phone="+447700900123",
        first_name="Ada",
        last_name="Lovelace",
        location="London, UK",
        properties={"tier": "gold", "order_count": 3},
    )
    assert (person.email_marketing, person.sms_marketing) == (True, False)
    assert (person.suppressed, person.newsletter_member) == (False, True)


def test_properties_read_back_with_the_type_they_were_sent_with(
    ac: ActiveCampaignSandbox,
) -> None:
    properties = {
        "zip": "01234",
        "code": "123",
        "vip": True,
        "ltv": 12.5,
        "tags": ["a", "b"],
        "prefs": {"k": 1},
    }

    async def write_then_read(client: ActiveCampaignClient) -> ProviderPerson | None:
        await client.upsert_profile(Profile("ada@example.com", properties=properties))
        return await client.read_person("ada@example.com", None)

    person = with_client(ac, write_then_read)

    assert person is not None
    assert person.profile.properties == properties
    assert (person.email_marketing, person.suppressed, person.newsletter_member) == (
        None,
        False,
        None,
    )
    assert "POST /api/3/tags" not in paths(ac), "a read makes nothing"


def test_a_field_made_by_another_replica_is_read_back(ac: ActiveCampaignSandbox) -> None:
    async def read_after_another_wrote(client: ActiveCampaignClient) -> ProviderPerson | None:
        await client.upsert_profile(Profile("ada@example.com", properties={"tier": "gold"}))
        await client.read_person("ada@example.com", None)  # fields now known to this client
        other = with_other_client(ac, Profile("ada@example.com", properties={"pet": "cat"}))
        await other
        return await client.read_person("ada@example.com", None)

    person = with_client(ac, read_after_another_wrote)

    assert person is not None
    assert person.profile.properties == {"tier": "gold", "pet": "cat"}


async def with_other_client(sandbox: ActiveCampaignSandbox, profile: Profile) -> None:
    async with client_on(sandbox) as other:
        await other.upsert_profile(profile)


def test_an_unknown_person_reads_back_as_none(ac: ActiveCampaignSandbox) -> None:
    assert with_client(ac, lambda c: c.read_person("nobody@example.com", None)) is None


def new_list(name: str) -> dict[str, object]:
    return {
        "list": {
            "name": name,
            "stringid": name.lower(),
            "sender_url": "https://shop.example",
            "sender_reminder": "You signed up at checkout",
        }
    }
