"""ActiveCampaign behind the `Provider` interface: contacts and custom fields, consent on lists
and a tag, segments' lists (found by name or made, people put in and taken out: lists.py),
events through event tracking, placed orders and abandoned carts as e-commerce orders, erasure,
bulk import (into a campaign's list too), read-back, automation enrolment, and email campaigns
made and sent (campaigns.py).

Errors are translated in http.py. ActiveCampaign has no idempotency keys: what this client does
against repeats, and what can still repeat, is in the README ("What can repeat with
ActiveCampaign"). In short: lookups before writes where a duplicate would be a second object
(orders, carts, customers, the connection, fields, tags, tag links, enrolments), and a bounded
memory of accepted events; a write whose answer was lost is counted in
`marketing_dispatcher_provider_unknown_outcomes`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import orjson

from dispatcher.providers import http_pool
from dispatcher.providers.activecampaign import bodies, campaigns, consent_calls, webhooks
from dispatcher.providers.activecampaign.automations import Automations
from dispatcher.providers.activecampaign.catalogue import ActiveCampaignCatalogue
from dispatcher.providers.activecampaign.consent_calls import (
    SUBSCRIBED,
    UNSUBSCRIBED,
    Lists,
    ListStatuses,
)
from dispatcher.providers.activecampaign.contacts import Contacts
from dispatcher.providers.activecampaign.ecommerce import KINDS, OrderKey, Orders, Store, order_body
from dispatcher.providers.activecampaign.fields import FieldIds
from dispatcher.providers.activecampaign.http import (
    USER_AGENT,
    ApiHttp,
    JsonObject,
    as_id,
    json_object,
    record_id,
    records,
    send,
    status_error,
)
from dispatcher.providers.activecampaign.imports import Imports
from dispatcher.providers.activecampaign.limits import (
    CONSENT_RECORD,
    ENROL_AUTOMATION,
    LIMITS,
    LIST_STATUS,
    REMOVE_AUTOMATION,
    SUPPRESS,
    TRACKING_BUCKETS,
    UNSUPPRESS,
)
from dispatcher.providers.activecampaign.lists import ListIds, ListSender, membership_runs
from dispatcher.providers.activecampaign.memory import Recent
from dispatcher.providers.activecampaign.people import read_person
from dispatcher.providers.base import (
    CREATE_EVENTS,
    REQUEST_ERASURE,
    SEND_CAMPAIGN,
    UPSERT_PROFILE,
    BulkCall,
    CampaignSend,
    ConsentState,
    EnrolmentChange,
    ImportContact,
    ImportStatus,
    Limits,
    ListChange,
    PreparedEvent,
    Profile,
    ProviderPerson,
    PushTokenChange,
    RequestPacer,
    TrackedEvent,
)
from dispatcher.providers.catalogue import CatalogueStep
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError

log = logging.getLogger(__name__)
TRACKING_URL = "https://trackcmp.net/event"
SUPPRESSION_TAG = "marketing-suppressed"
ACCEPTED_EVENTS = 100_000
OUR_STORE = Store()
DEFAULT_LIST_SENDER = ListSender()
OwnerT = TypeVar("OwnerT")


@dataclass(frozen=True)
class TrackingAccount:
    """Event tracking's own credentials (Settings > Tracking): the account id and event key."""

    account_id: str
    key: str
    url: str = TRACKING_URL


class ActiveCampaignClient:
    """One ActiveCampaign account. Safe to share between tasks of one event loop; close with
    aclose(). `lists` are where consent is expressed (consent_calls.py); `list_sender` is what
    a list made for a segment says of its sender (lists.py)."""

    limits: Limits = LIMITS

    def __init__(
        self,
        base_url: str,
        api_key: str,
        tracking: TrackingAccount,
        *,
        sms_list_id: str | None = None,
        suppression_tag: str = SUPPRESSION_TAG,
        store: Store = OUR_STORE,
        list_sender: ListSender = DEFAULT_LIST_SENDER,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not api_key.strip():
            raise ValueError("an ActiveCampaign API key is required")
        if not tracking.account_id.strip() or not tracking.key.strip():
            raise ValueError("ActiveCampaign event tracking needs the account id and event key")
        self._api = ApiHttp(base_url, api_key, timeout_s=timeout_s, transport=transport)
        self._tracking = tracking
        self._tracker = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout_s),
            limits=http_pool.limits(),
            transport=transport,
            event_hooks={"request": [http_pool.note_leaving]},
        )
        self._sms_list = sms_list_id or None
        self._suppression_tag = suppression_tag
        self._fields = FieldIds(self._api)
        self._contacts = Contacts(self._api)
        self._orders = Orders(self._api, store)
        self._imports = Imports(self._api, self._fields)
        self._automations = Automations(self._api, self._contacts)
        self._lists = ListIds(self._api, list_sender)
        self._catalogue = ActiveCampaignCatalogue(self._api)
        self._accepted: Recent[str, bool] = Recent(ACCEPTED_EVENTS)
        self._tracking_on = False
        self._tracking_lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- contacts --------------------------------------------------------------------------

    async def upsert_profile(self, profile: Profile) -> str:
        """POST /contact/sync (custom fields created on first use); the contact id."""
        ids = await self._fields.ids(
            bodies.field_values(profile), UPSERT_PROFILE, bodies.json_titles(profile)
        )
        return await self._contacts.sync(bodies.profile_sync(profile, ids), UPSERT_PROFILE)

    async def request_erasure(self, email: str) -> None:
        """DELETE /contacts/{id} of every contact with this email (one, as emails are unique
        in an account); none, or one deleted meanwhile, is done already."""
        for found in await self._contacts.find_all(email, REQUEST_ERASURE):
            await self._api.call(
                "DELETE",
                f"/contacts/{found['id']}",
                operation=REQUEST_ERASURE,
                allow_missing=True,
            )
        self._contacts.forget(email)
        self._orders.forget(email)

    async def read_person(
        self, email: str, newsletter_list_id: str | None
    ) -> ProviderPerson | None:
        return await read_person(
            self._api,
            self._contacts,
            self._fields,
            email,
            Lists(newsletter_list_id or None, self._sms_list),
            self._suppression_tag,
        )

    # --- events ----------------------------------------------------------------------------

    def prepare_event(self, event: TrackedEvent) -> PreparedEvent:
        """An order or cart as its ecomOrder (ids added when sent); any other event as the
        form fields of event tracking."""
        try:
            if event.metric in KINDS:
                key, body = order_body(event)
                content = orjson.dumps({"key": [key.field, key.value], "order": body})
            else:
                content = orjson.dumps({"form": bodies.tracking_fields(event)})
        except (TypeError, ValueError) as exc:
            raise PermanentProviderError(
                f"ActiveCampaign event {event.event_id!r}: cannot be encoded: {exc}",
                code="unserializable",
            ) from exc
        return PreparedEvent(event, len(content), content)

    async def create_events(self, events: Sequence[PreparedEvent]) -> None:
        """One event per call (event tracking has no bulk form). An event this client had
        accepted before is not sent again."""
        if len(events) > self.limits.create_events.max_items:
            raise ValueError(f"{len(events)} events in one call; ActiveCampaign takes one")
        for prepared in events:
            if self._accepted.get(prepared.event.event_id):
                continue
            content: dict[str, Any] = orjson.loads(prepared.content)
            if "order" in content:
                key = OrderKey(*content["key"])
                await self._orders.record(key, content["order"], CREATE_EVENTS)
            else:
                await self._track(content["form"])
            self._accepted.put(prepared.event.event_id, True)

    async def _track(self, form: dict[str, str]) -> None:
        if not self._tracking_on:
            await self._switch_tracking_on()
        account = self._tracking
        data = {"actid": account.account_id, "key": account.key, **form}
        async with self._api.pacer(CREATE_EVENTS, TRACKING_BUCKETS):
            response = await send(self._tracker, "POST", account.url, CREATE_EVENTS, data=data)
        if not response.is_success:
            raise status_error(response, "POST /event", CREATE_EVENTS)
        reply = json_object(response)
        if str(reply.get("success", "")) != "1":
            raise PermanentProviderError(
                f"ActiveCampaign event tracking refused {form['event']!r}: "
                f"{reply.get('message', reply)}",
                status=response.status_code,
                code="tracking_refused",
            )

    async def _switch_tracking_on(self) -> None:
        """Event tracking is an account setting, off in a new account: switched on once
        (GET, and PUT only when off) before the first event this client tracks. A key that
        may not change it is logged, not fatal: the tracking call itself says if it is off."""
        async with self._tracking_lock:
            if self._tracking_on:
                return
            try:
                reply = await self._api.call("GET", "/eventTracking", operation=CREATE_EVENTS)
                if not _enabled((reply or {}).get("eventTracking")):
                    body = {"eventTracking": {"enabled": True}}
                    await self._api.call(
                        "PUT", "/eventTracking", operation=CREATE_EVENTS, body=body
                    )
            except PermanentProviderError as exc:
                log.warning("cannot switch ActiveCampaign event tracking on: %s", exc)
            self._tracking_on = True

    # --- consent ---------------------------------------------------------------------------

    def plan_consent(
        self, states: Sequence[tuple[OwnerT, ConsentState]], newsletter_list_id: str | None
    ) -> list[BulkCall[OwnerT]]:
        """The record, list-status, unsuppress and suppress calls (consent_calls.py), in that
        order; calls without items are left out."""
        lists = Lists(newsletter_list_id or None, self._sms_list)
        planned = consent_calls.plan(states, lists)
        calls = [
            BulkCall.of(CONSENT_RECORD, planned.record, self.record_consent),
            BulkCall.of(LIST_STATUS, planned.lists, self.set_list_statuses),
            BulkCall.of(UNSUPPRESS, planned.unsuppress, self.unsuppress),
            BulkCall.of(SUPPRESS, planned.suppress, self.suppress),
        ]
        return [call for call in calls if call.owners]

    async def record_consent(self, states: Sequence[ConsentState]) -> None:
        """A contact sync with the consent fields (and the phone); creates a missing contact."""
        for state in states:
            values = consent_calls.record_fields(state)
            ids = await self._fields.ids(values, CONSENT_RECORD)
            phone = {"phone": state.change.phone} if state.change.phone else {}
            fields = {ids[title]: text for title, text in values.items()}
            body = bodies.contact_sync(state.change.email, fields, phone)
            await self._contacts.sync(body, CONSENT_RECORD)

    async def set_list_statuses(self, changes: Sequence[ListStatuses]) -> None:
        """Each person's list statuses; a missing contact is created."""
        for change in changes:
            await self._set_statuses(change, LIST_STATUS, create=True)

    async def _set_statuses(self, change: ListStatuses, operation: str, *, create: bool) -> bool:
        """POST /contactLists for each of the person's lists; False when they have no contact
        (never with `create`, which makes one)."""

        async def set_statuses(contact: str) -> bool:
            for list_id, status in change.statuses:
                await self._contacts.set_list_status(contact, list_id, status, operation)
            return True

        done = await self._contacts.on_contact(change.email, operation, set_statuses, create=create)
        return done is not None

    async def suppress(self, emails: Sequence[str]) -> None:
        """Tags the contact `suppression_tag` (unless tagged already)."""
        for email in emails:
            await self._contacts.on_contact(email, SUPPRESS, self._tag_suppressed, create=True)

    async def _tag_suppressed(self, contact: str) -> None:
        tag = await self._contacts.tag_id(self._suppression_tag, SUPPRESS)
        await self._contacts.add_tag(contact, tag, SUPPRESS)

    async def unsuppress(self, emails: Sequence[str]) -> None:
        """Removes the suppression tag, if the contact has it."""
        for email in emails:
            contact = await self._contacts.id_of(email, UNSUPPRESS, create=False)
            if contact is not None:
                tag = await self._contacts.tag_id(self._suppression_tag, UNSUPPRESS)
                await self._contacts.remove_tag(contact, tag, UNSUPPRESS)

    # --- push ---------------------------------------------------------------------------------

    async def change_push_token(self, change: PushTokenChange) -> None:
        """ActiveCampaign's API has no push channel (no device tokens): `limits.offers_push`
        is False, so this is never called; a caller that does is told why."""
        raise PermanentProviderError("ActiveCampaign has no push channel", code="unsupported")

    # --- segments' lists ---------------------------------------------------------------------

    async def find_list(self, name: str) -> str:
        """The id of the list named `name`, made when the account has none (lists.py)."""
        return await self._lists.find(name)

    def plan_lists(self, changes: Sequence[tuple[OwnerT, ListChange]]) -> list[BulkCall[OwnerT]]:
        """Runs of joins and leaves (`list_join`, `list_leave`), in the order given."""
        return [
            BulkCall.of(operation, pairs, functools.partial(self.set_memberships, operation))
            for operation, pairs in membership_runs(changes)
        ]

    async def set_memberships(self, operation: str, changes: Sequence[ListChange]) -> None:
        """Status 1 (a join) or 2 (a leave) on each change's list, for every person who has a
        contact; then the joins of those who have none are refused by their index (no contact
        is made; their leaves are done)."""
        # Someone with no contact is in no list: only their joins are refused.
        missing = [
            index
            for index, change in enumerate(changes)
            if not await self._set_membership(change, operation) and change.member
        ]
        if missing:
            raise PermanentProviderError(
                f"ActiveCampaign {operation}: no contact for item(s) {missing}; list changes"
                " make none",
                code="no_contact",
                item_indexes=tuple(missing),
            )

    async def _set_membership(self, change: ListChange, operation: str) -> bool:
        status = SUBSCRIBED if change.member else UNSUBSCRIBED
        statuses = ListStatuses(change.email, ((change.list_id, status),))
        try:
            return await self._set_statuses(statuses, operation, create=False)
        except PermanentProviderError as exc:
            if exc.code != "related_missing":
                raise
            if await self._lists.exists(change.list_id, operation):
                return False  # the contact, just found, was erased before its status was set
            raise PermanentProviderError(
                f"ActiveCampaign list {change.list_id} does not exist",
                status=404,
                code="list_missing",
            ) from exc

    # --- full sync and automations -----------------------------------------------------------

    async def start_import(
        self, contacts: Sequence[ImportContact], list_id: str | None = None
    ) -> str:
        return await self._imports.start(contacts, list_id)

    async def import_status(self, job_id: str) -> ImportStatus:
        return await self._imports.status(job_id)

    async def enrol_in_automation(self, email: str, automation_id: str) -> str:
        """The contact's enrolment in the automation (an existing running one, else new)."""
        return await self._automations.enrol(email, automation_id)

    async def remove_from_automation(self, email: str, automation_id: str) -> int:
        """Ends the contact's enrolments in the automation; how many there were."""
        return await self._automations.remove(email, automation_id)

    def plan_enrolments(
        self,
        changes: Sequence[tuple[OwnerT, EnrolmentChange]],
        accepted: Callable[[OwnerT, str], None],
    ) -> list[BulkCall[OwnerT]]:
        """A call per change, in order (ActiveCampaign has no bulk call for automations):
        begun, the contact enrolled in its automation (made when missing), `accepted` with
        the enrolment's id; ended, removed from it (nobody is made), `accepted` with "".
        Without an automation, or at an end while another of the person's enrolments in the
        flow runs on (`others_active`), there is nothing to send. ActiveCampaign keeps one
        running enrolment per contact and automation: two of ours in one flow (two carts)
        share it, so it is removed only when the last of them ends."""
        return [
            BulkCall(
                ENROL_AUTOMATION if change.active else REMOVE_AUTOMATION,
                [owner],
                functools.partial(self._change_enrolment, change, accepted),
            )
            for owner, change in changes
            if change.automation_id and not change.others_active
        ]

    async def _change_enrolment(
        self,
        change: EnrolmentChange,
        accepted: Callable[[OwnerT, str], None],
        owners: Sequence[OwnerT],
    ) -> None:
        if change.active:
            enrolment = await self.enrol_in_automation(change.email, change.automation_id)
        else:
            await self.remove_from_automation(change.email, change.automation_id)
            enrolment = ""
        for owner in owners:  # the change's own (its call's only)
            accepted(owner, enrolment)

    # --- campaigns ---------------------------------------------------------------------------

    async def send_campaign(self, send: CampaignSend) -> str:
        """The campaign named `send.name`, found or made (campaigns.py says the requests), and
        sent to its list; its id. A draft found (an earlier try's, its answer lost) is given a
        message and sent; a campaign past draft was sent by an earlier try and is left as it
        is. The template is translated before anything is written: one the tags cannot
        carry is refused (PermanentProviderError) with nothing made. A try whose message
        was made but whose campaign was not leaves that message unused (harmless)."""
        campaigns.check_send(send)
        found = await self._find_campaign(send.name)
        if found is not None and not found.draft:
            return found.id
        message_id = await self._campaign_message(send)
        campaign_id = found.id if found is not None else await self._create_campaign(send.name)
        try:
            await self._api.call(
                "PUT",
                campaigns.edit_path(campaign_id),
                operation=SEND_CAMPAIGN,
                body=campaigns.edit_body(send, message_id),
            )
        except PermanentProviderError as refused:
            # "Campaign already scheduled": another try sent it meanwhile, as was wanted.
            again = await self._find_campaign(send.name) if refused.status == 400 else None
            if again is None or again.draft:
                raise
            return again.id
        return campaign_id

    async def _find_campaign(self, name: str) -> campaigns.Campaign | None:
        """The campaign named exactly `name`, every page of the filtered list read."""
        found: list[campaigns.Campaign] = []
        offset = 0
        while True:
            params = campaigns.find_params(name, offset)
            reply = await self._api.call(
                "GET", campaigns.CAMPAIGNS, operation=SEND_CAMPAIGN, params=params
            )
            page = records(reply, "campaigns")
            found += campaigns.named(page, name)
            if len(page) < campaigns.PAGE:
                return campaigns.chosen(found)
            offset += len(page)

    async def _campaign_message(self, send: CampaignSend) -> str:
        """POST /messages with the subject and HTML in personalization tags; its id. The
        fields the template names are found (or made, as an import would make them) first,
        for their tags."""
        what = f"campaign {send.name!r}"
        titles = campaigns.field_titles((*send.subject, *send.body), what)
        perstags = await self._fields.perstags(titles, SEND_CAMPAIGN)
        known = self._fields.known_perstags()
        subject = campaigns.template(send.subject, perstags, known, f"{what} subject")
        html = campaigns.template(send.body, perstags, known, f"{what} body")
        body = campaigns.message_body(send, subject, html)
        reply = await self._api.call("POST", campaigns.MESSAGES, operation=SEND_CAMPAIGN, body=body)
        return _created_id(reply, "message", f"POST {campaigns.MESSAGES}")

    async def _create_campaign(self, name: str) -> str:
        """POST /campaign, a draft; should its answer be lost, the next try finds it by name."""
        reply = await self._api.call(
            "POST",
            campaigns.CREATE_CAMPAIGN,
            operation=SEND_CAMPAIGN,
            body=campaigns.campaign_body(name),
        )
        return _created_id(reply, "", f"POST {campaigns.CREATE_CAMPAIGN}")

    async def create_webhook(
        self,
        name: str,
        url: str,
        events: Sequence[str] = webhooks.EVENTS,
        sources: Sequence[str] = webhooks.SOURCES,
    ) -> str:
        """POST /webhooks (webhooks.py): ActiveCampaign posts `events` from `sources` to
        `url`; the new webhook's id. A one-off (`marketing-dispatcher webhooks register`)."""
        body = webhooks.create_body(name, url, events, sources)
        reply = await self._api.call(
            "POST", webhooks.PATH, operation=webhooks.CREATE_WEBHOOK, body=body
        )
        webhook_id = record_id(reply, "webhook")
        if not webhook_id:
            raise RetryableProviderError(
                "ActiveCampaign POST /webhooks: no webhook id in the reply",
                code="invalid_response",
            )
        return webhook_id

    async def list_webhooks(self) -> list[tuple[str, str, str]]:
        """GET /webhooks, page by page until one is short: (id, name, url) of each webhook."""
        found: list[tuple[str, str, str]] = []
        offset = 0
        while True:
            params = {"limit": webhooks.PAGE, "offset": offset}
            reply = await self._api.call(
                "GET", webhooks.PATH, operation=webhooks.LIST_WEBHOOKS, params=params
            )
            page = records(reply, "webhooks")
            found += webhooks.listed(page)
            if len(page) < webhooks.PAGE:
                return found
            offset += len(page)

    async def delete_webhook(self, webhook_id: str) -> None:
        """DELETE /webhooks/{id}. A webhook already gone is done: what the caller wanted."""
        await self._api.call(
            "DELETE",
            webhooks.webhook_path(webhook_id),
            operation=webhooks.DELETE_WEBHOOK,
            allow_missing=True,
        )

    def catalogue_steps(self) -> list[CatalogueStep]:
        """One catalogue refresh: campaigns, then automations, with their counters
        (catalogue.py)."""
        return self._catalogue.steps()

    def pace_requests(self, pacer: RequestPacer) -> None:
        """Every request, to /api/3 and to event tracking, is sent inside `pacer`: an
        operation may make several (limits.py), and each is counted."""
        self._api.pacer = pacer

    async def aclose(self) -> None:
        await self._api.aclose()
        await self._tracker.aclose()


def _created_id(reply: JsonObject | None, key: str, what: str) -> str:
    """The id of a create's reply: under `key` ({"message": {"id"}}), or at its top ("" key:
    POST /campaign answers {"id": 149, ...}). None is retryable: the caller's next try looks
    for what was made before making it again."""
    identifier = record_id(reply, key) if key else as_id((reply or {}).get("id"))
    if not identifier:
        raise RetryableProviderError(
            f"ActiveCampaign {what}: no id in the reply", code="invalid_response"
        )
    return identifier


def _enabled(setting: object) -> bool:
    value = setting.get("enabled") if isinstance(setting, dict) else None
    return value in (True, 1, "1", "true")
