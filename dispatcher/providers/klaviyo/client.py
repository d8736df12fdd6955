"""Klaviyo behind the `Provider` interface, over httpx (REST API, JSON:API bodies).

Errors are translated at this boundary, nowhere else:

    network error, timeout, 408, 429, 5xx   -> RetryableProviderError (Retry-After -> retry_after)
    any other non-2xx                        -> PermanentProviderError (code = errors[0].code;
                                                item_indexes from errors[].source.pointer)
    a list join of an email Klaviyo         -> PermanentProviderError (code profile_not_found,
    holds no profile for (not sent)            item_indexes: those changes)

Enrolment changes go as bulk event jobs, the flow's profile property sent with each event
(enrolments.py). A campaign send is found by name or created, given its template and sent
(campaigns.py).

Batches larger than `limits` allow (in items, or in the bytes of prepared events) are a caller
bug and raise ValueError before anything is sent; empty batches send nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx

from dispatcher.providers import http_pool
from dispatcher.providers.base import (
    FIND_LIST,
    IMPORT_STATUS,
    READ_PERSON,
    SEND_CAMPAIGN,
    BulkCall,
    CampaignSend,
    ConsentChange,
    ConsentState,
    EnrolmentChange,
    ImportContact,
    ImportFailure,
    ImportStatus,
    Limits,
    ListChange,
    OperationLimits,
    PreparedEvent,
    Profile,
    ProviderPerson,
    PushTokenChange,
    RateBucket,
    RequestPacer,
    TrackedEvent,
    WindowReport,
    report_window,
    unpaced,
)
from dispatcher.providers.catalogue import CatalogueStep
from dispatcher.providers.errors import (
    PermanentProviderError,
    ProviderError,
    RetryableProviderError,
)
from dispatcher.providers.klaviyo import (
    bodies,
    campaigns,
    consent_calls,
    enrolments,
    imports,
    lists_calls,
    reading,
    webhooks,
)
from dispatcher.providers.klaviyo.catalogue_steps import KlaviyoCatalogue
from dispatcher.providers.klaviyo.limits import (
    ASSIGN_TEMPLATE,
    CREATE_CAMPAIGN,
    CREATE_LIST,
    CREATE_TEMPLATE,
    DELETE_TEMPLATE,
    GET_CAMPAIGN,
    GET_LISTS,
    IMPORT_ERRORS,
    IMPORT_JOB,
    LIMITS,
    LIST_ADD,
    LIST_REMOVE,
    PROFILE_LISTS,
    PROFILES,
    SEND_CAMPAIGN_JOB,
    STEADY_WINDOW_S,
)
from dispatcher.providers.klaviyo.limits import CAMPAIGNS as GET_CAMPAIGNS
from dispatcher.providers.retry_after import parse_retry_after

JSON_API = "application/vnd.api+json"
PROFILE_IMPORT = "/api/profile-import"
EVENTS = "/api/events"
EVENTS_BULK = "/api/event-bulk-create-jobs"
SUBSCRIBE = "/api/profile-subscription-bulk-create-jobs"
UNSUBSCRIBE = "/api/profile-subscription-bulk-delete-jobs"
SUPPRESS = "/api/profile-suppression-bulk-create-jobs"
UNSUPPRESS = "/api/profile-suppression-bulk-delete-jobs"
ERASE = "/api/data-privacy-deletion-jobs"
PUSH_TOKENS = "/api/push-tokens"

log = logging.getLogger(__name__)
_USER_AGENT = "marketing-automation-dispatcher/0.1"
_MAX_DETAIL = 300
OwnerT = TypeVar("OwnerT")


class KlaviyoClient:
    """One Klaviyo account. Safe to share between tasks of one event loop; close with aclose()."""

    limits: Limits = LIMITS

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://a.klaviyo.com",
        revision: str = "2026-07-15",
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`sleep` waits out a throttled page of a job's import errors."""
        if not api_key.strip():
            raise ValueError("a Klaviyo private API key is required")
        self._sleep = sleep
        self._pacer: RequestPacer = unpaced
        self._catalogue = KlaviyoCatalogue(self._get_json, self._post)
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={
                "Authorization": f"Klaviyo-API-Key {api_key}",
                "revision": revision,
                "Accept": JSON_API,
                "Content-Type": JSON_API,
                "User-Agent": _USER_AGENT,
            },
            timeout=httpx.Timeout(timeout_s),
            limits=http_pool.limits(),
            transport=transport,
            event_hooks={
                "request": [http_pool.note_leaving],
                "response": [_report_steady_window],
            },
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def upsert_profile(self, profile: Profile) -> str:
        """POST /api/profile-import (201 created, 200 updated); returns the profile id."""
        response = await self._post(PROFILE_IMPORT, bodies.profile_import(profile))
        return _profile_id(response)

    def prepare_event(self, event: TrackedEvent) -> PreparedEvent:
        """The event as a bulk job carries it, and the most it adds to the job's body."""
        try:
            content, size = bodies.bulk_event(event)
        except (TypeError, ValueError) as exc:
            raise _unserializable(f"event {event.event_id!r}", exc) from exc
        return PreparedEvent(event, size, content)

    async def create_events(self, events: Sequence[PreparedEvent]) -> None:
        """One event: POST /api/events (a smaller body than a one-event job). More: one bulk
        job of the events' prepared resources, grouped per profile."""
        limits = self.limits.create_events
        _check_batch(events, limits.max_items, "events")
        if len(events) == 1:
            body, blame = bodies.event_create(events[0].event)
            await self._post(EVENTS, body, blame)
        elif events:
            _check_bytes(events, limits)
            content, blame = bodies.events_bulk(events)
            await self._send(EVENTS_BULK, content, blame)

    async def subscribe(self, changes: Sequence[ConsentChange], list_id: str | None) -> None:
        """Email marketing for changes with email_marketing=True; SMS marketing for those with
        sms_marketing=True and a phone. A change granting neither is skipped."""
        _check_batch(changes, self._consent_limit(consent_calls.SUBSCRIBE), "subscriptions")
        body, blame = bodies.subscribe_job(changes, list_id)
        if body is not None:
            await self._post(SUBSCRIBE, body, blame)

    async def unsubscribe(self, changes: Sequence[ConsentChange]) -> None:
        """Withdraws the channels set to False (SMS only with a phone); others are left alone."""
        _check_batch(changes, self._consent_limit(consent_calls.UNSUBSCRIBE), "unsubscriptions")
        body, blame = bodies.unsubscribe_job(changes)
        if body is not None:
            await self._post(UNSUBSCRIBE, body, blame)

    async def suppress(self, emails: Sequence[str]) -> None:
        """Adds a USER_SUPPRESSED suppression."""
        _check_batch(emails, self._consent_limit(consent_calls.SUPPRESS), "suppressions")
        if emails:
            body, blame = bodies.suppression_job(emails, lift=False)
            await self._post(SUPPRESS, body, blame)

    async def unsuppress(self, emails: Sequence[str]) -> None:
        """Removes a USER_SUPPRESSED suppression; Klaviyo leaves unsubscribes, bounces and
        invalid addresses in place (only a subscribe lifts an unsubscribe)."""
        _check_batch(emails, self._consent_limit(consent_calls.UNSUPPRESS), "suppressions")
        if emails:
            body, blame = bodies.suppression_job(emails, lift=True)
            await self._post(UNSUPPRESS, body, blame)

    def plan_consent(
        self, states: Sequence[tuple[OwnerT, ConsentState]], newsletter_list_id: str | None
    ) -> list[BulkCall[OwnerT]]:
        """Klaviyo's four consent calls, planned by consent_calls.plan, in its order; a
        subscribe call per list. Calls without items are left out."""
        planned = consent_calls.plan(states, newsletter_list_id)
        calls = [
            BulkCall.of(consent_calls.SUBSCRIBE, pairs, partial(self.subscribe, list_id=list_id))
            for list_id, pairs in planned.subscribe.items()
        ]
        calls.append(BulkCall.of(consent_calls.UNSUPPRESS, planned.unsuppress, self.unsuppress))
        calls.append(BulkCall.of(consent_calls.UNSUBSCRIBE, planned.unsubscribe, self.unsubscribe))
        calls.append(BulkCall.of(consent_calls.SUPPRESS, planned.suppress, self.suppress))
        return [call for call in calls if call.owners]

    def _consent_limit(self, operation: str) -> int:
        return self.limits.consent[operation].max_items

    async def request_erasure(self, email: str) -> None:
        await self._post(ERASE, bodies.deletion_job(email))

    async def change_push_token(self, change: PushTokenChange) -> None:
        """create_push_token (create or update), or delete_push_token, whose id is the
        token itself; a token Klaviyo does not hold (404) is deleted already."""
        if change.registered:
            await self._post(PUSH_TOKENS, bodies.push_token(change))
            return
        path = f"{PUSH_TOKENS}/{quote(change.token, safe='')}"
        try:
            await self._send(path, b"", method="DELETE")
        except PermanentProviderError as exc:
            if exc.status != 404:
                raise

    async def find_list(self, name: str) -> str:
        """The oldest list named `name`, else a list created with that name (lists_calls.py);
        each request paced as FIND_LIST. A create whose answer was lost is found by the
        next try."""
        if not name.strip():
            raise PermanentProviderError("Klaviyo lists: a list needs a name", code="invalid")
        query = lists_calls.find_query(name)
        page = await self._get_json(FIND_LIST, lists_calls.LISTS, GET_LISTS, query)
        found = lists_calls.found(page, name)
        if found is not None:
            return found
        async with self._pacer(FIND_LIST, CREATE_LIST):
            response = await self._post(lists_calls.LISTS, lists_calls.create_body(name))
        try:
            return lists_calls.created_id(response.json())
        except ValueError as exc:
            raise _invalid_response("POST", lists_calls.LISTS, response, exc) from exc

    def plan_lists(self, changes: Sequence[tuple[OwnerT, ListChange]]) -> list[BulkCall[OwnerT]]:
        """A call per list and direction, in the order each was first seen: add_to_list
        for joins, remove_from_list for leaves."""
        return [
            BulkCall.of(
                lists_calls.operation(member),
                pairs,
                partial(self._change_list, list_id, member),
            )
            for (list_id, member), pairs in lists_calls.plan(changes).items()
        ]

    async def _change_list(self, list_id: str, member: bool, changes: list[ListChange]) -> None:
        """Look up the people's profile ids, then add them to the list or remove them. A join
        of an email Klaviyo holds no profile for is refused (its item named) before the list
        is changed: the caller fails it and sends the others again. Its leave is done."""
        operation = lists_calls.operation(member)
        _check_batch(changes, self.limits.lists[operation].max_items, "list changes")
        if not changes:
            return
        if not list_id:
            raise PermanentProviderError("Klaviyo lists: no list id", code="invalid")
        emails = [change.email for change in changes]
        ids = await self._profile_ids(operation, emails)
        missing = tuple(i for i, email in enumerate(emails) if email.lower() not in ids)
        if missing and member:
            raise lists_calls.no_profiles(f"Klaviyo {operation} {list_id}", emails, missing)
        # Someone Klaviyo holds no profile for is in no list: their leave is done.
        held = [ids[email.lower()] for email in emails if email.lower() in ids]
        if not held:
            return
        body, blame = lists_calls.relationships_body(held)
        path = lists_calls.relationships_path(list_id)
        method, bucket = ("POST", LIST_ADD) if member else ("DELETE", LIST_REMOVE)
        async with self._pacer(operation, bucket):
            await self._send(path, _encode(body, path), blame, method)

    async def _profile_ids(self, operation: str, emails: Sequence[str]) -> dict[str, str]:
        """Lower-cased email -> profile id of the people Klaviyo holds, 100 emails a request."""
        ids: dict[str, str] = {}
        for batch in lists_calls.lookups(emails):
            query = lists_calls.profiles_query(batch)
            page = await self._get_json(operation, reading.PROFILES, PROFILES, query)
            ids.update(lists_calls.profile_ids(page))
        return ids

    def plan_enrolments(
        self,
        changes: Sequence[tuple[OwnerT, EnrolmentChange]],
        accepted: Callable[[OwnerT, str], None],
    ) -> list[BulkCall[OwnerT]]:
        """Bulk event jobs of up to 1,000 events (a plan's only event: POST /api/events), each
        event with its flow's property for the profile; then a profile-import per change with
        only a property to set (enrolments.py). Klaviyo keeps no enrolment of its own: each
        owner sent is `accepted` with ""."""
        planned = enrolments.plan(changes, self.limits.enrolments[enrolments.ENROLMENT_EVENTS])
        calls = [
            BulkCall.of(enrolments.ENROLMENT_EVENTS, job, self._enrolment_events)
            if len(job) > 1
            else BulkCall.of(enrolments.ENROLMENT_EVENT, job, self._enrolment_event)
            for job in planned.jobs
        ]
        calls += [
            BulkCall.of(enrolments.ENROLMENT_PROPERTY, [pair], self._enrolment_property)
            for pair in planned.properties
        ]
        return [_accepting(call, accepted) for call in calls]

    async def _enrolment_events(self, items: Sequence[enrolments.EnrolmentEvent]) -> None:
        """One bulk job; more events or bytes than a job takes is a caller bug."""
        limits = self.limits.enrolments[enrolments.ENROLMENT_EVENTS]
        prepared = [item.prepared for item in items]
        _check_batch(prepared, limits.max_items, "enrolment events")
        _check_bytes(prepared, limits)
        if prepared:
            content, blame = bodies.events_bulk(prepared, [item.properties for item in items])
            await self._send(EVENTS_BULK, content, blame)

    async def _enrolment_event(self, items: Sequence[enrolments.EnrolmentEvent]) -> None:
        for item in items:  # one (its call's limit)
            body, blame = bodies.event_create(item.prepared.event, item.properties)
            await self._post(EVENTS, body, blame)

    async def _enrolment_property(self, profiles: Sequence[Profile]) -> None:
        for profile in profiles:  # one (its call's limit)
            await self._post(PROFILE_IMPORT, bodies.profile_import(profile))

    async def start_import(
        self, contacts: Sequence[ImportContact], list_id: str | None = None
    ) -> str:
        """POST /api/profile-bulk-import-jobs with the contacts' profiles (and, with
        `list_id`, the list each joins); the job id. A body over the job's byte limit is
        refused before it is sent, naming no profile (the caller splits the job); consent
        is left to `plan_consent`."""
        limits = self.limits.import_profiles
        assert limits is not None
        _check_batch(contacts, limits.max_items, "profiles")
        if not contacts:
            raise ValueError("an import job takes at least one profile")
        content, blame = imports.job_body([contact.profile for contact in contacts], list_id)
        if limits.max_bytes is not None and len(content) > limits.max_bytes:
            raise PermanentProviderError(
                f"Klaviyo POST {imports.JOBS}: {len(content)} bytes of profiles; "
                f"a job takes {limits.max_bytes}",
                code="too_large",
            )
        response = await self._send(imports.JOBS, content, blame)
        try:
            return imports.job_id(response.json())
        except ValueError as exc:
            raise _invalid_response("POST", imports.JOBS, response, exc) from exc

    async def send_campaign(self, send: CampaignSend) -> str:
        """The campaign named `send.name` for its list, found or created (campaigns.py says
        the requests), completed from where it stands and sent; its id. A Draft gets the
        email's template and its send job; a campaign past Draft was sent (or scheduled) by
        an earlier try and is left as it is. Every request is paced as SEND_CAMPAIGN. The
        template is translated before anything is made: one Klaviyo's syntax cannot carry
        is refused (PermanentProviderError) with nothing made."""
        texts = campaigns.content(send)
        found = await self._find_campaign(texts.channel, send.name)
        campaign = found or await self._create_campaign(send, texts)
        if not campaign.draft:
            return campaign.id
        if texts.channel == "email":
            await self._assign_template(send.name, campaign, texts.body)
        await self._start_send_job(campaign.id)
        return campaign.id

    async def _find_campaign(self, channel: str, name: str) -> campaigns.Campaign | None:
        """The campaign of the channel named exactly `name` (every page read), if any."""
        found: list[campaigns.Campaign] = []
        url: str | None = campaigns.CAMPAIGNS
        query: dict[str, str] | None = campaigns.find_query(channel, name)
        while url is not None:
            page = await self._get_json(SEND_CAMPAIGN, url, GET_CAMPAIGNS, query)
            try:
                found += campaigns.named(page, name)
            except ValueError as exc:
                raise _invalid_document("GET", campaigns.CAMPAIGNS, exc) from exc
            url, query = reading.next_page(page), None  # the next page's URL carries the query
        return campaigns.chosen(found)

    async def _create_campaign(
        self, send: CampaignSend, texts: campaigns.Content
    ) -> campaigns.Campaign:
        """create_campaign, a Draft. Should its answer be lost, the next try finds it by name."""
        body = campaigns.create_body(send, texts)
        async with self._pacer(SEND_CAMPAIGN, CREATE_CAMPAIGN):
            response = await self._post(campaigns.CAMPAIGNS, body)
        try:
            return campaigns.campaign_document(response.json())
        except ValueError as exc:
            raise _invalid_response("POST", campaigns.CAMPAIGNS, response, exc) from exc

    async def _read_campaign(self, campaign_id: str) -> campaigns.Campaign:
        path = campaigns.campaign_path(campaign_id)
        async with self._pacer(SEND_CAMPAIGN, GET_CAMPAIGN):
            response = await self._get(path)
        try:
            return campaigns.campaign_document(response.json())
        except ValueError as exc:
            raise _invalid_response("GET", path, response, exc) from exc

    async def _assign_template(self, name: str, campaign: campaigns.Campaign, html: str) -> None:
        """A template of the email's HTML, assigned to the campaign's message (which copies
        it), then deleted whatever the assignment's outcome: the account holds at most 1,000
        templates, and a try that failed must not keep one. A message assigned again (a
        found Draft's, which may have one already) takes the same HTML again."""
        message_id = await self._message_id(campaign)
        body = campaigns.template_body(name, html)
        async with self._pacer(SEND_CAMPAIGN, CREATE_TEMPLATE):
            response = await self._post(campaigns.TEMPLATES, body)
        try:
            template_id = campaigns.template_id(response.json())
        except ValueError as exc:
            raise _invalid_response("POST", campaigns.TEMPLATES, response, exc) from exc
        try:
            async with self._pacer(SEND_CAMPAIGN, ASSIGN_TEMPLATE):
                assignment = campaigns.assign_body(message_id, template_id)
                await self._post(campaigns.TEMPLATE_ASSIGNMENTS, assignment)
        finally:
            await self._delete_template(template_id)

    async def _message_id(self, campaign: campaigns.Campaign) -> str:
        """The campaign's (one) message; read from the campaign itself when a page of
        get_campaigns did not name it."""
        ids = campaign.message_ids or (await self._read_campaign(campaign.id)).message_ids
        if not ids:
            raise RetryableProviderError(
                f"Klaviyo campaign {campaign.id}: no campaign-message named",
                code="invalid_response",
            )
        return ids[0]

    async def _delete_template(self, template_id: str) -> None:
        """A template gone already (404) is deleted. Any other failure is logged, not
        raised: the message has its copy (or the assignment's own error is on its way up),
        and a template left over costs one of the account's 1,000, not the send."""
        path = campaigns.template_path(template_id)
        try:
            async with self._pacer(SEND_CAMPAIGN, DELETE_TEMPLATE):
                await self._send(path, b"", method="DELETE")
        except ProviderError as exc:
            if exc.status != 404:
                log.warning("Klaviyo template %s left over: %s", template_id, exc)

    async def _start_send_job(self, campaign_id: str) -> None:
        """create_campaign_send_job. Refused (400) for a campaign no longer a Draft, which
        another try sent meanwhile: that is what was wanted. Any other refusal is raised."""
        body = campaigns.send_job_body(campaign_id)
        try:
            async with self._pacer(SEND_CAMPAIGN, SEND_CAMPAIGN_JOB):
                await self._post(campaigns.SEND_JOBS, body)
        except PermanentProviderError as refused:
            if refused.status != 400 or (await self._read_campaign(campaign_id)).draft:
                raise

    async def import_status(self, job_id: str) -> ImportStatus:
        """GET the job; once it is done with failures, every page of its import errors."""
        path = imports.job_path(job_id)
        async with self._pacer(IMPORT_STATUS, IMPORT_JOB):
            response = await self._get(path)
        try:
            current = imports.status(response.json())
        except ValueError as exc:
            raise _invalid_response("GET", path, response, exc) from exc
        if not current.done or current.failed == 0:
            return current
        return replace(current, failures=tuple(await self._import_errors(job_id)))

    async def _import_errors(self, job_id: str) -> list[ImportFailure]:
        """Every page, in order. A throttled page is waited out and asked for again
        (a few times): starting over from the first page after a 429 would meet the
        same limit at the same page for a job with many errors."""
        found: list[ImportFailure] = []
        url: str | None = imports.errors_path(job_id)
        params: dict[str, int] | None = {"page[size]": imports.ERRORS_PAGE_SIZE}
        while url is not None:
            response = await self._get_waiting_out_429(url, params)
            try:
                page, url = imports.failures(response.json())
            except ValueError as exc:
                raise _invalid_response("GET", imports.errors_path(job_id), response, exc) from exc
            found.extend(page)
            params = None  # the next page's URL carries them
        return found

    async def _get_waiting_out_429(self, url: str, params: dict[str, int] | None) -> httpx.Response:
        attempt = 1
        while True:
            try:
                async with self._pacer(IMPORT_STATUS, IMPORT_ERRORS):  # each try is a request
                    return await self._get(url, params)
            except RetryableProviderError as exc:
                if exc.status != 429 or attempt >= imports.THROTTLED_PAGE_ATTEMPTS:
                    raise
                await self._sleep(min(exc.retry_after or 1.0, imports.MAX_PAGE_WAIT_S))
            attempt += 1

    async def read_person(
        self, email: str, newsletter_list_id: str | None
    ) -> ProviderPerson | None:
        """The profile with this email, its consent and suppression (reading.py says how they
        map), and whether it is in the newsletter list when one is given; None when Klaviyo
        holds no profile with this email."""
        query = reading.profile_query(email)
        found = await self._get_json(READ_PERSON, reading.PROFILES, PROFILES, query)
        resource = reading.first_profile(found)
        if resource is None:
            return None
        member = None
        if newsletter_list_id:
            lists = await self._profile_lists(str(resource["id"]))
            member = newsletter_list_id in lists
        return reading.person(resource, member)

    async def _profile_lists(self, profile_id: str) -> set[str]:
        """Every list the profile is in, all pages."""
        ids: set[str] = set()
        url: str | None = reading.profile_lists_path(profile_id)
        while url is not None:
            page = await self._get_json(READ_PERSON, url, PROFILE_LISTS)
            ids.update(reading.list_ids(page))
            url = reading.next_page(page)
        return ids

    async def _get_json(
        self,
        operation: str,
        path: str,
        buckets: Sequence[RateBucket],
        params: dict[str, str] | None = None,
    ) -> Any:
        """GET a JSON:API collection for `operation`, paced in `buckets`. A 2xx whose body
        is not one is retryable (a proxy's page, say): reading changes nothing, so
        trying again is safe."""
        async with self._pacer(operation, buckets):
            response = await self._get(path, params)
        try:
            document = response.json()
            reading.list_ids(document)  # a collection: `data` is an array
        except ValueError as exc:
            raise _unreadable(path, response) from exc
        return document

    async def create_webhook(
        self,
        name: str,
        endpoint_url: str,
        secret: str,
        topics: Sequence[str] = webhooks.TOPICS,
        description: str = "",
    ) -> str:
        """POST /api/webhooks (webhooks.py): Klaviyo sends `topics` to `endpoint_url`, signed
        with `secret`; the new webhook's id. A one-off (`marketing-dispatcher webhooks
        register`): it draws from no budget."""
        body = webhooks.create_body(name, endpoint_url, secret, topics, description)
        response = await self._post(webhooks.PATH, body)
        try:
            return webhooks.created_id(response.json())
        except ValueError as exc:
            raise _invalid_response("POST", webhooks.PATH, response, exc) from exc

    async def list_webhooks(self) -> list[tuple[str, str, str]]:
        """GET /api/webhooks, every page (links.next): (id, name, endpoint_url) of each
        webhook. A one-off like create_webhook; a later page waits `PAGE_INTERVAL_S` first
        (webhooks.py says why)."""
        found: list[tuple[str, str, str]] = []
        url: str | None = webhooks.PATH
        while url is not None:
            response = await self._get(url)
            try:
                document = response.json()
                found += webhooks.listed(document)
            except ValueError as exc:
                raise _unreadable(webhooks.PATH, response) from exc
            url = reading.next_page(document)
            if url is not None:
                await self._sleep(webhooks.PAGE_INTERVAL_S)
        return found

    async def delete_webhook(self, webhook_id: str) -> None:
        """DELETE /api/webhooks/{id} (204). A webhook already gone (404) is done: what the
        caller wanted."""
        try:
            await self._send(webhooks.webhook_path(webhook_id), b"", method="DELETE")
        except PermanentProviderError as exc:
            if exc.status != 404:
                raise

    def catalogue_steps(self) -> list[CatalogueStep]:
        """One catalogue refresh: email and SMS campaigns, flows, then their figures from the
        reporting endpoints (catalogue_steps.py)."""
        return self._catalogue.steps()

    def pace_requests(self, pacer: RequestPacer) -> None:
        """Send each request of the calls that may make several inside `pacer`
        (`Limits.paces_requests`: import_status, read_person, find_list, add_to_list,
        remove_from_list, send_campaign and the catalogue's), with that request's endpoint
        bucket. Every other call is one
        request, which the gate reserves as a whole before it goes."""
        self._pacer = pacer

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(
        self, path: str, body: bodies.JsonObject, blame: bodies.Blame | None = None
    ) -> httpx.Response:
        return await self._send(path, _encode(body, path), blame)

    async def _send(
        self,
        path: str,
        content: bytes,
        blame: bodies.Blame | None = None,
        method: str = "POST",
    ) -> httpx.Response:
        try:
            response = await http_pool.sent_in_time(
                lambda: self._http.request(method, path, content=content)
            )
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            # our own request is malformed (base_url scheme, header value): retrying cannot help
            raise PermanentProviderError(_transport_message(path, exc, method)) from exc
        except httpx.RequestError as exc:
            raise RetryableProviderError(_transport_message(path, exc, method)) from exc
        try:
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            raise _status_error(exc.response, path, blame, method) from exc
        return response

    async def _get(self, url: str, params: Mapping[str, str | int] | None = None) -> httpx.Response:
        try:
            response = await http_pool.sent_in_time(lambda: self._http.get(url, params=params))
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            raise PermanentProviderError(_transport_message(url, exc, "GET")) from exc
        except httpx.RequestError as exc:
            raise RetryableProviderError(_transport_message(url, exc, "GET")) from exc
        try:
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            raise _status_error(exc.response, url, None, "GET") from exc
        return response


async def _report_steady_window(response: httpx.Response) -> None:
    """Every answer but a 429 says in `RateLimit-Reset` when the endpoint's steady
    (1-minute) window ends (shared/PROVIDERS.md; developers.klaviyo.com/en/docs/
    rate_limits_and_error_handling): the shared budget learns the window's edge from it."""
    if response.status_code == 429:
        return
    try:
        reset_s = float(response.headers.get("RateLimit-Reset", ""))
    except ValueError:  # absent, or not a number: nothing learnt
        return
    report_window(WindowReport(reset_s, STEADY_WINDOW_S))


def _accepting(call: BulkCall[OwnerT], accepted: Callable[[OwnerT, str], None]) -> BulkCall[OwnerT]:
    """`call`, telling `accepted` of each owner it sent once Klaviyo took them."""

    async def send(owners: Sequence[OwnerT]) -> None:
        await call.send(owners)
        for owner in owners:
            accepted(owner, "")

    return BulkCall(call.operation, call.owners, send)


def _check_batch(items: Sequence[object], limit: int, what: str) -> None:
    if len(items) > limit:
        raise ValueError(f"{len(items)} {what} in one call; Klaviyo takes at most {limit}")


def _check_bytes(events: Sequence[PreparedEvent], limits: OperationLimits) -> None:
    if limits.max_bytes is None:
        return
    size = limits.wrapping_bytes + sum(event.size for event in events)
    if size > limits.max_bytes:
        raise ValueError(f"{size} bytes of events in one call; Klaviyo takes {limits.max_bytes}")


def _encode(body: bodies.JsonObject, path: str) -> bytes:
    try:
        return bodies.encode(body)
    except (TypeError, ValueError) as exc:
        raise _unserializable(f"POST {path}", exc) from exc


def _unserializable(what: str, exc: Exception) -> PermanentProviderError:
    return PermanentProviderError(f"Klaviyo {what}: body is not JSON: {exc}", code="unserializable")


def _transport_message(path: str, exc: httpx.RequestError, method: str = "POST") -> str:
    detail = str(exc) or type(exc).__name__
    return f"Klaviyo {method} {path}: {type(exc).__name__}: {detail}"


def _invalid_response(
    method: str, path: str, response: httpx.Response, exc: ValueError
) -> RetryableProviderError:
    """A 2xx that is not the document asked for (a proxy's page, say): retryable,
    within the caller's attempt budget (a job started twice is imported twice: an upsert)."""
    return RetryableProviderError(
        f"Klaviyo {method} {path}: HTTP {response.status_code}: {exc}",
        status=response.status_code,
        code="invalid_response",
    )


def _invalid_document(method: str, path: str, exc: ValueError) -> RetryableProviderError:
    """An answer's document that is not what was asked for (see `_invalid_response`)."""
    return RetryableProviderError(f"Klaviyo {method} {path}: {exc}", code="invalid_response")


def _unreadable(path: str, response: httpx.Response) -> RetryableProviderError:
    return RetryableProviderError(
        f"Klaviyo GET {path}: HTTP {response.status_code} without a JSON:API collection",
        status=response.status_code,
        code="invalid_response",
    )


def _profile_id(response: httpx.Response) -> str:
    """data.id of the reply. A 2xx without one (a proxy's page, say) is retryable: the import
    is idempotent, and the attempt budget of the caller bounds the retries."""
    try:
        profile_id = response.json()["data"]["id"]
    except (ValueError, KeyError, TypeError) as exc:
        raise _no_profile_id(response) from exc
    if not isinstance(profile_id, str) or not profile_id:
        raise _no_profile_id(response)
    return profile_id


def _no_profile_id(response: httpx.Response) -> RetryableProviderError:
    return RetryableProviderError(
        f"Klaviyo POST {PROFILE_IMPORT}: HTTP {response.status_code} without data.id",
        status=response.status_code,
        code="invalid_response",
    )


def _status_error(
    response: httpx.Response, path: str, blame: bodies.Blame | None, method: str = "POST"
) -> ProviderError:
    status = response.status_code
    errors = _error_objects(response)
    first = errors[0] if errors else {}
    code = str(first.get("code") or "")
    message = f"Klaviyo {method} {path}: HTTP {status} {_describe(first, response)}".rstrip()
    if status in (408, 429) or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RetryableProviderError(message, status=status, code=code, retry_after=retry_after)
    pointers = [p for p in (_pointer(e) for e in errors) if p]
    indexes = blame.for_pointers(pointers) if blame is not None else ()
    return PermanentProviderError(message, status=status, code=code, item_indexes=indexes)


def _error_objects(response: httpx.Response) -> list[dict[str, Any]]:
    """`errors` of a JSON:API error document; [] for anything else (HTML from a proxy, ...)."""
    try:
        document = json.loads(response.content)
    except ValueError:
        return []
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return []
    return [e for e in errors if isinstance(e, dict)]


def _pointer(error: dict[str, Any]) -> str:
    source = error.get("source")
    pointer = source.get("pointer") if isinstance(source, dict) else None
    return pointer if isinstance(pointer, str) else ""


def _describe(error: dict[str, Any], response: httpx.Response) -> str:
    if error:
        parts = [error.get("code"), error.get("detail") or error.get("title"), _pointer(error)]
        text = " ".join(str(p) for p in parts if p)
    else:
        text = response.text.strip().replace("\n", " ")
    return text[:_MAX_DETAIL]
