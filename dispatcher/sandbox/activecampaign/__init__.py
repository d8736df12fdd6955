"""A local stand-in for the ActiveCampaign API v3 subset this project uses, for tests and
`MARKETING_PROVIDER=activecampaign make up` (facts: shared/PROVIDERS.md and PROVIDERS-API.md,
ActiveCampaign sections; what a module decides beyond them is said in its docstring).

    POST   /api/3/contact/sync                      201 upsert on email (empty strings overwrite)
    GET    /api/3/contacts[?email=&email_like=&ids[]=&listid=&tagid=&id_greater=&limit=&offset=]
    GET    /api/3/contacts/{id}                     404 {"message"} when unknown (also DELETE)
    DELETE /api/3/contacts/{id}                     200 {}
    GET    /api/3/contacts/{id}/contactLists | contactTags | contactAutomations
    GET    /api/3/fields[?limit=&offset=&filters[perstag]=];  POST /api/3/fields  201 (422 dup)
    POST   /api/3/fieldRels 201;  POST /api/3/fieldValues 200
    GET    /api/3/lists[?filters[name]=&filters[channel]=&limit=&offset=]  email lists unless
           filters[channel] is sms or all; filters[name] matches the whole name, ignoring case
    GET    /api/3/lists/{id}                        404 {"message"} when unknown
    POST   /api/3/lists                             200; 422 field_missing without name,
           stringid, sender_url or sender_reminder; 422 duplicate for a stringid in use
    POST   /api/3/contactLists                      200 (status 1 / 2); 422 related_missing for
                                                    an unknown contact or list
    GET    /api/3/tags[?search=];  POST /api/3/tags 201;  POST /api/3/contactTags 201
    DELETE /api/3/contactTags/{id}                  200 {}, 404 when unknown
    GET    /api/3/automations;  POST /api/3/contactAutomations 201 (403 on failure)
    GET    /api/3/campaigns[?limit=&offset=&filters[seriesid]=&filters[name]=&orders[sdate]=]
                                                    planted and API-made campaigns, every
                                                    counter a string; filters[name] matches
                                                    the whole name exactly (ASSUMED: not
                                                    documented)
    POST   /api/3/messages                          201 {"message": {fromname, fromemail,
                                                    reply2, subject, html, ..., "id"}}; 422
                                                    field_missing at /data/attributes/<f>
                                                    for each required field missing
    POST   /api/3/campaign                          200 {"id": <a number>, name, type,
                                                    canSplitContent}: a draft (status 0);
                                                    400 {"errors": ["Field name is
                                                    required", ...]}
    PUT    /api/3/campaigns/{id}/edit               ASSUMED shape (none documents it whole):
                                                    {listIds, messageId, scheduledDate?
                                                    "YYYY-MM-DD HH:MM:SS" UTC, status: 1?}
                                                    -> 200 {"campaign"}; status 1 schedules
                                                    it; 400 {"errors": [...]} when it is no
                                                    draft ("Campaign already scheduled") or
                                                    names an unknown list or message; 404
                                                    {"message"} for an unknown campaign
    DELETE /api/3/contactAutomations/{id}           200 {}, 403 {"message"} when unknown
    POST   /api/3/import/bulk_import                200 queued; 400 validation or rate limit
    GET    /api/3/import/info?batchId=              queued -> processing -> completed
    GET    /api/3/import/bulk_import                outstanding / recentlyCompleted
    POST   /api/3/connections 200;  POST /api/3/ecomCustomers 201;  POST /api/3/ecomOrders 201
    PUT    /api/3/ecomOrders/{id} 200;  GET /api/3/connections | ecomCustomers | ecomOrders
           (filters[externalid], filters[email], ...)
    GET|PUT /api/3/eventTracking;  GET|POST /api/3/eventTrackingEvents;  DELETE .../{name}
    POST   /event                                   trackcmp: form-encoded actid, key, event,
                                                    eventdata, visit
    POST   /api/3/webhooks                          201 {"webhook": {..., "id"}} of {"webhook":
                                                    {name, url, events[], sources[], listid?}};
                                                    422 field_missing / field_invalid /
                                                    related_missing (webhooks.py)
    GET    /api/3/webhooks[/{id}];  DELETE /api/3/webhooks/{id}   200 {}; 404 when unknown
    GET    /api/3/webhook/events                    the 25 event names, meta.total 25

Checks, in order: a queued fault; the rate limit (5 requests/s per account over every /api/3
call whatever its key, 429 + Retry-After; /event has its own 5/s); `Api-Token` (missing or
wrong: 403 {"message":"Forbidden"}); the route (404, 405); the call's own checks. Windows are
fixed and aligned to epoch seconds (bulk import's 100 and 20 a minute to epoch minutes).

It also simulates ActiveCampaign's sending (DESIGN.md, "Who decides, who sends"): an
automation given messages through the control endpoints sends them to each contact enrolled,
when due by the sandbox's clock, recorded rendered, or skipped or cancelled with why (rules:
dispatcher/sandbox/activecampaign/automation_flows.py; scheduling:
dispatcher/sandbox/common/flows.py). An automation may start on a tracked event. A campaign
scheduled through the API (campaign_drafts.py) is sent when due by the same clock to each
contact on its lists: to those subscribed (status 1) and not on the exclusion list, recorded
skipped with the reason otherwise, rendered from the contact in ActiveCampaign's
personalization tags and conditional content (personalization.py), its status going 1 -> 2
-> 5 and its counters kept (campaign_sending.py, campaign_reports.py). And it sends
ActiveCampaign's webhooks (dispatcher/sandbox/activecampaign/webhook_events.py): `sent`
(`sms_sent`) for each automation message sent, and the engagements POST /_sandbox/engagement
tells it or seeded engagement draws for a campaign's recipients (naming the campaign), one
form-encoded POST per event to the webhooks subscribed to its type and source, from a
background thread; never retried; a 410 deactivates the webhook.

Control endpoints: the shared ones (dispatcher/sandbox/common/control.py: requests, rejections
with the error's body, faults whose `detail` is answered as {"message"}, throttled with the
buckets api, event, bulk_import and bulk_import_single_contact, counting bulk import's rate-limit
400s, health; /event's form recorded as a JSON object; DELETE /_sandbox/requests also forgets
the messages already sent, skipped or cancelled, the campaign messages recorded, and the
webhook delivery attempts), the simulated sending's (dispatcher/sandbox/common/
flow_control.py: clock, flows, messages; dispatcher/sandbox/common/campaign_sends.py:
GET /_sandbox/campaign-messages[?campaign_id=&email=&status=&limit=&offset=], .../summary,
.../emails?campaign_id=, POST|GET|DELETE /_sandbox/campaign-engagement), and its own:

    POST   /_sandbox/reset                         a new account (seeded; no flows, no
                                                   messages, no campaigns, no seeded
                                                   engagement, no webhooks), no log, no
                                                   faults; the clock stays
    GET    /_sandbox/clock                         {"now", "now_s", "offset_s"}
    POST   /_sandbox/clock                         {"advance_s": 3600}: the clock moves on
                                                   (never back); due messages and campaigns
                                                   go out; 200 + the clock
    POST   /_sandbox/flows                         {"automation": "<id>", "messages":
                                                    [{"delay_s", "channel": "email"|"sms",
                                                    "subject", "body"}], "trigger_event"?,
                                                    "list"?} (or a list): 201 + the flows;
                                                   templates say {{ contact.firstName }},
                                                   {{ contact.fields.<PERSTAG> }},
                                                   {{ event.data.<key> }}
    GET    /_sandbox/flows;  DELETE /_sandbox/flows (flows, runs and messages: 204)
    GET    /_sandbox/messages[?email=&flow=&status=]   each message: id, flow (the automation
                                                   id), flow_name, run, step, channel, email,
                                                   to, status (scheduled, sent, skipped,
                                                   cancelled), reason, subject, body,
                                                   unique_id, scheduled_at, due_at, decided_at
    POST   /_sandbox/automations                   {"name": ..., "messages"?, "trigger_event"?,
                                                    "list"?}: add an automation (201
                                                   {"automation", "flow"?})
    POST   /_sandbox/exclusions                    {"emails": [...]}: on the exclusion list
    POST   /_sandbox/campaigns                     {"name", "status"?, "sdate"?, "counters"?}
                                                   (or a list): 201 {"campaigns"}
                                                   (campaigns.py); GET /_sandbox/campaigns
    POST   /_sandbox/engagement                    {"email", "type": "delivered" | "opened" |
                                                    "clicked" | "bounced" | "spam" |
                                                    "unsubscribed" | "sms_unsubscribed",
                                                    "message_id"?, "url"? (clicked),
                                                    "bounce_type"?: "hard" | "soft",
                                                    "phone"?, "campaign_id"?, "reason"?}: what
                                                   a contact did (404 for an unknown one); its
                                                   effect (unsubscribed: status 2 on its email
                                                   lists; spam: also the exclusion list; hard
                                                   bounce: status 3 and the exclusion list;
                                                   sms_unsubscribed: status 2 on SMS lists),
                                                   then reported: 202 {"external_ids" (the
                                                   body's SHA-256), "webhooks"}; a campaign_id
                                                   of one of the account's campaigns is named
                                                   in full (campaign[id|name|type|status|
                                                   recipients|message][id|subject]) and
                                                   counted in its counters (no message_id
                                                   then: 400)
    GET    /_sandbox/campaign-messages[?campaign_id=&email=&status=&limit=&offset=]
                                                   {"messages": [{id, campaign_id,
                                                   campaign_name, channel ("email"), email,
                                                   to, status (sent | skipped), reason,
                                                   subject, body (rendered), headers
                                                   (List-Unsubscribe, List-Unsubscribe-Post),
                                                   sent_at}], "total"}; due campaigns sent
                                                   first
    GET    /_sandbox/campaign-messages/summary     {"campaigns": {id: {name, sent, skipped}}}
    GET    /_sandbox/campaign-messages/emails?campaign_id=   text/plain: each recipient sent
                                                   to, a line each
    POST   /_sandbox/campaign-engagement           {"seed", "default"?: {"delivered",
                                                    "opened", "clicked"}, "by_subject"?:
                                                    {"<subject as written>": {...}}}: how the
                                                   recipients of campaigns sent afterwards
                                                   engage (drawn per message; each reported
                                                   as POST /_sandbox/engagement with the
                                                   campaign_id would be: webhooks `sent`,
                                                   `open`, `click`); GET shows it, DELETE
                                                   ends it; a reset ends it too
    GET    /_sandbox/webhook-deliveries[?webhook=]  every delivery attempt: seq, webhook, url,
                                                   attempt, status (null: no answer), error,
                                                   external_ids, headers, body, answer,
                                                   sent_at
    GET    /_sandbox/contacts[?email=] | events[?event=] | orders | automations | imports | lists
                                                   | webhooks (each with `active`: false once
                                                   answered 410)
    GET    /_sandbox/members?list=<id>             the list's contacts: contact, email, status,
                                                   sdate, udate

Run it with `python -m dispatcher.sandbox --provider activecampaign` (or MARKETING_PROVIDER=
activecampaign), or in-process with `start_activecampaign_sandbox()`.
"""

from dispatcher.sandbox.activecampaign.runner import (
    ActiveCampaignSandbox,
    start_activecampaign_sandbox,
)

__all__ = ["ActiveCampaignSandbox", "start_activecampaign_sandbox"]
