"""ActiveCampaign campaigns: a campaign part's email in ActiveCampaign's personalization tags,
the request bodies of a send, and the campaigns found by name (the client makes the requests,
`send_campaign`). Email only: the API has no SMS or push campaigns.

    find:     GET  /campaigns?filters[name]=<name>&limit=100&offset=  page by page while full;
                   the filter is ASSUMED to match exactly (no source documents it), so the
                   names answered are compared here too
    message:  POST /messages  {"message": {fromname, fromemail, reply2, subject, html}}
    create:   POST /campaign  {name, type "single", canSplitContent false}  -> {"id": 149}
    send:     PUT  /campaigns/{id}/edit  {listIds, messageId, scheduledDate?, status 1}
                   (ASSUMED shape); the campaign's status goes from "0" (draft) to "1"
                   (scheduled), "2" (sending), "5" (completed)

Personalization: `%EMAIL%`, `%FIRSTNAME%`, `%LASTNAME%`, `%PHONE%`; any other variable is the
contact's custom field of that title (the profile import's: bodies.py), by its perstag
(`%TIER%`), the recipient's preference link the field `PREFERENCES_URL_PROPERTY`. A fallback
is conditional content: `%IF $TAG != ''%%TAG%%ELSE%fallback%/IF%`. ActiveCampaign has no
escape for its tags or conditionals, so text (or a fallback) that would read as one is refused
rather than sent changed.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from dispatcher.providers.activecampaign.bodies import LOCATION_FIELD, JsonObject, numeric_id
from dispatcher.providers.activecampaign.http import as_id
from dispatcher.providers.activecampaign.limits import LIMITS
from dispatcher.providers.base import (
    PREFERENCES_URL_PROPERTY,
    CampaignSend,
    TemplatePart,
    TemplateVariable,
)
from dispatcher.providers.errors import PermanentProviderError

CAMPAIGNS = "/campaigns"
MESSAGES = "/messages"
CREATE_CAMPAIGN = "/campaign"  # singular: the create's own path
PAGE = 100
DRAFT = "0"
SCHEDULED = 1  # the status an edit gives to send the campaign (at its date, or at once)
SCHEDULED_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# The contact's own fields, by their standard personalization tags.
STANDARD_TAGS = {
    "email": "EMAIL",
    "first_name": "FIRSTNAME",
    "last_name": "LASTNAME",
    "phone": "PHONE",
}
# Our other contact fields, custom fields of these titles (as the profile import makes them).
_FIELD_TITLES = {
    "location": LOCATION_FIELD,
    "loyalty_tier": "loyalty_tier",
    "language": "language",
    "timezone": "timezone",
    "unsubscribe_url": PREFERENCES_URL_PROPERTY,
}
CUSTOM = "custom"
CONDITIONALS = ("%IF", "%ELSE%", "%/IF%")
# A tag's name between percent signs, overlapping matches included ("%A%B%" holds both).
_TAG_NAMES = re.compile(r"(?=%([A-Za-z0-9_-]+)%)")


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    status: str

    @property
    def draft(self) -> bool:
        return self.status == DRAFT


# --- the template --------------------------------------------------------------------------


def check_send(send: CampaignSend) -> None:
    """PermanentProviderError for a send ActiveCampaign's campaigns cannot make."""
    if send.channel not in LIMITS.campaign_channels:
        raise PermanentProviderError(
            f"ActiveCampaign campaign {send.name!r}: no campaigns on the channel "
            f"{send.channel!r} (email only)",
            code="unsupported",
        )
    if not send.name.strip():
        raise PermanentProviderError("an ActiveCampaign campaign needs a name", code="invalid")


def field_titles(parts: Iterable[TemplatePart], what: str) -> list[str]:
    """The custom fields' titles the variables of `parts` name, each once, in order."""
    titles = (field_title(part.path, what) for part in parts if isinstance(part, TemplateVariable))
    return list(dict.fromkeys(title for title in titles if title is not None))


def field_title(path: tuple[str, ...], what: str) -> str | None:
    """The custom field of a variable; None for the contact's own fields (STANDARD_TAGS)."""
    if len(path) == 1 and path[0] in STANDARD_TAGS:
        return None
    if len(path) == 1 and path[0] in _FIELD_TITLES:
        return _FIELD_TITLES[path[0]]
    if len(path) == 2 and path[0] == CUSTOM and path[1]:
        return path[1]
    raise PermanentProviderError(
        f"ActiveCampaign {what}: no contact value for the variable {'.'.join(path)!r}",
        code="template",
    )


def template(
    parts: Sequence[TemplatePart],
    perstags: Mapping[str, str],
    known_tags: Collection[str],
    what: str,
) -> str:
    """`parts` in ActiveCampaign's tags: `perstags` maps each field title the parts name to
    its tag; `known_tags` are every tag the account renders (refused in text)."""
    known = frozenset(known_tags) | frozenset(perstags.values()) | frozenset(STANDARD_TAGS.values())
    merged = _merged_text(parts)
    written: list[str] = []
    for index, part in enumerate(merged):
        if isinstance(part, TemplateVariable):
            written.append(variable(part, perstags, known, what))
        else:
            _check(_with_neighbours(merged, index), known, what, "its text")
            written.append(part)
    return "".join(written)


def variable(
    part: TemplateVariable, perstags: Mapping[str, str], known: Collection[str], what: str
) -> str:
    """`%TAG%`, or with a fallback `%IF $TAG != ''%%TAG%%ELSE%fallback%/IF%`."""
    title = field_title(part.path, what)
    tag = STANDARD_TAGS[part.path[0]] if title is None else perstags[title]
    if part.fallback is None:
        return f"%{tag}%"
    # The fallback sits between two percent signs (of %ELSE% and %/IF%): checked so.
    _check(f"%{part.fallback}%", known, what, "a fallback")
    return f"%IF ${tag} != ''%%{tag}%%ELSE%{part.fallback}%/IF%"


def _merged_text(parts: Sequence[TemplatePart]) -> list[TemplatePart]:
    """`parts` with adjacent texts joined, so a tag split between two is seen."""
    merged: list[TemplatePart] = []
    for part in parts:
        previous = merged[-1] if merged else None
        if isinstance(part, str) and isinstance(previous, str):
            merged[-1] = previous + part
        else:
            merged.append(part)
    return merged


def _with_neighbours(parts: Sequence[TemplatePart], index: int) -> str:
    """The text at `index` with the percent sign a variable next to it ends or begins
    with: `%EMAI` + `%FIRSTNAME%` reads `%EMAIL%` as much as text alone would."""
    before = "%" if index > 0 else ""
    after = "%" if index + 1 < len(parts) else ""
    text = parts[index]
    assert isinstance(text, str)
    return before + text + after


def _check(text: str, known: Collection[str], what: str, where: str) -> None:
    found = next((c for c in CONDITIONALS if c in text), None)
    if found is None:
        found = next((f"%{m}%" for m in _TAG_NAMES.findall(text) if m in known), None)
    if found is not None:
        raise PermanentProviderError(
            f"ActiveCampaign {what} cannot be written in ActiveCampaign's personalization "
            f"tags: {where} holds {found!r}",
            code="template",
        )


# --- finding a campaign by name ------------------------------------------------------------


def find_params(name: str, offset: int) -> dict[str, str | int]:
    return {"filters[name]": name, "limit": PAGE, "offset": offset}


def named(rows: Iterable[JsonObject], name: str) -> list[Campaign]:
    """The campaigns of a page named exactly `name`."""
    found = [
        Campaign(as_id(row.get("id")), str(row.get("name", "")), as_id(row.get("status")))
        for row in rows
    ]
    return [campaign for campaign in found if campaign.id and campaign.name == name]


def chosen(campaigns: Sequence[Campaign]) -> Campaign | None:
    """The campaign to complete of those named alike (two only when a create's answer was
    lost and the next look missed it): one past draft, so that a second is never sent too;
    else the oldest (the lowest id)."""
    ordered = sorted(campaigns, key=lambda each: (each.draft, _order(each.id)))
    return ordered[0] if ordered else None


def _order(identifier: str) -> tuple[int, str]:
    return (int(identifier), "") if identifier.isdigit() else (0, identifier)


# --- the bodies of a send ------------------------------------------------------------------


def message_body(send: CampaignSend, subject: str, html: str) -> JsonObject:
    """POST /messages: the email, its sender and its translated subject and HTML."""
    return {
        "message": {
            "fromname": send.from_label,
            "fromemail": send.from_email,
            "reply2": send.reply_to,
            "subject": subject,
            "html": html,
        }
    }


def campaign_body(name: str) -> JsonObject:
    """POST /campaign: a single-message campaign (no split content), a draft."""
    return {"name": name, "type": "single", "canSplitContent": False}


def edit_body(send: CampaignSend, message_id: str) -> JsonObject:
    """PUT /campaigns/{id}/edit: the list and message, sent at `send_at` or at once."""
    body: JsonObject = {
        "listIds": [numeric_id(send.list_id)],
        "messageId": numeric_id(message_id),
        "status": SCHEDULED,
    }
    if send.send_at is not None:
        body["scheduledDate"] = scheduled_date(send.send_at)
    return body


def scheduled_date(when: datetime) -> str:
    """`when` in UTC as the edit takes it; a naive datetime is taken to be UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime(SCHEDULED_DATE_FORMAT)


def edit_path(campaign_id: str) -> str:
    return f"{CAMPAIGNS}/{campaign_id}/edit"
