"""A local stand-in for the Klaviyo API subset the dispatcher uses, for tests and `make up`.

Same paths, status codes, headers checks and JSON:API error bodies as Klaviyo (revision
2026-07-15); every accepted request is recorded, and faults can be queued to exercise retries.

    POST /api/profile-import                      201 first time per email, 200 after; data.id
    POST /api/events                              202
    POST /api/event-bulk-create-jobs              202 (<= 1,000 events)
    POST /api/profile-subscription-bulk-create-jobs   202 (<= 1,000 profiles)
    POST /api/profile-subscription-bulk-delete-jobs   202 (<= 100 profiles)
    POST /api/profile-suppression-bulk-create-jobs    202 (<= 100 profiles)
    POST /api/profile-suppression-bulk-delete-jobs    202 (<= 100 profiles)
    POST /api/data-privacy-deletion-jobs          202 (exactly one identifier); the profile,
                                                  its consent, lists and push tokens are
                                                  deleted at once
    POST /api/push-tokens                         202: a device token with its profile
    GET  /api/push-tokens/{id}; DELETE (204)      the token (its id is the token); 404 when
                                                  unknown (push_routes.py)
    POST /api/profile-bulk-import-jobs            202 + job (<= 10,000 profiles, 5 MB); a
                                                  profile it cannot import is an import error
    GET  /api/profile-bulk-import-jobs/{id}       the job: queued, processing, complete
    GET  /api/profile-bulk-import-jobs/{id}/import-errors   paged by page[cursor]
    GET  /api/profiles?filter=equals(email,"...")[&additional-fields[profile]=subscriptions]
                                                  (or any(email,["...",...]); id, phone_number,
                                                  external_id alike), paged by page[cursor]
    GET  /api/profiles/{id}/lists                 the lists the profile joined
    GET  /api/lists?filter=equals(name,"...")     (or any(id,[...]), ...; sort; <= 10 a page)
    POST /api/lists                               201 + the new list (6-character id)
    POST   /api/lists/{id}/relationships/profiles 204: profiles (by id, <= 1,000) join the list
    DELETE /api/lists/{id}/relationships/profiles 204: they leave it; consent is unchanged
    GET  /api/lists/{id}/profiles                 the list's members (list_routes.py)
    GET  /api/campaigns?filter=equals(messages.channel,"email")   the planted campaigns and
                                                  those made by POST /api/campaigns (the
                                                  channel filter required; and(...) may add
                                                  contains(name,"...")); GET /api/flows
                                                  (the simulated flows), GET /api/metrics
                                                  (the metrics events named); POST
                                                  /api/campaign-values-reports and
                                                  /api/flow-values-reports (1/s, 2/min,
                                                  225/day each): catalogue_routes.py
    POST   /api/templates                         201 + the template: {"data": {"type":
                                                  "template", "attributes": {name,
                                                  editor_type (CODE | USER_DRAGGABLE |
                                                  SYSTEM_DRAGGABLE), html (required for
                                                  CODE), text?}}}; 400 at 1,000 templates
                                                  in the account (templates.py)
    DELETE /api/templates/{id}                    204; 404 when unknown (75/s, 750/m both)
    POST   /api/campaigns                         201 + the campaign, Draft: {name,
                                                  audiences: {included: [list ids, known],
                                                  excluded?}, send_strategy?: immediate
                                                  (default) | static {datetime, options:
                                                  {is_local: false}}, campaign-messages:
                                                  {data: [one message whose definition's
                                                  channel is email (content: subject,
                                                  from_email, from_label, preview_text?),
                                                  sms (content.body) or mobile_push
                                                  (content: title, body)]}}; 400 naming the
                                                  pointer (campaign_routes.py)
    GET    /api/campaigns/{id}                    the campaign: status Draft, Scheduled,
                                                  Sending, Sent; 404 when unknown
    POST   /api/campaign-message-assign-template  200 + the campaign message: the
                                                  template's html and text copied into it
                                                  (email only, its campaign a Draft: else
                                                  400); 404 for an unknown message/template
    POST   /api/campaign-send-jobs                202 {"data": {"type": "campaign-send-job",
                                                  "id": <campaign id>, "attributes":
                                                  {"status": "queued"}}}; 400 when the
                                                  campaign is not a Draft (a second send
                                                  job) or its email has no template
    GET    /api/campaign-send-jobs/{id}           queued, processing, complete; 404 when
                                                  the campaign has none (the campaign
                                                  endpoints: 10/s, 150/m each)
    POST   /api/webhooks                          201 + the webhook: {"data": {"type":
                                                  "webhook", "attributes": {name,
                                                  description?, endpoint_url, secret_key},
                                                  "relationships": {"webhook-topics": {"data":
                                                  [{"type": "webhook-topic", "id"}]}}}};
                                                  endpoint_url https only, EXCEPT loopback
                                                  hosts (127.0.0.1, localhost, ::1), also
                                                  taken over http so tests can receive
                                                  (webhook_book.py)
    GET    /api/webhooks;  GET /api/webhooks/{id} the webhooks (never their secret)
    DELETE /api/webhooks/{id}                     204; 404 when unknown
    GET    /api/webhook-topics                    the 8 topics it sends: event:klaviyo.
                                                  received_email, opened_email, clicked_email,
                                                  bounced_email, marked_email_as_spam,
                                                  unsubscribed_from_email_marketing,
                                                  unsubscribed_from_sms_marketing, sent_sms

Checks, in order: queued fault or opt-in throttle; unknown path 404; method 405; Authorization
`Klaviyo-API-Key <key>` 401; Klaviyo's rate limit for the key and endpoint 429 (rates.py; on
unless turned off); `revision` header 400; for POST and DELETE, Content-Type
(application/vnd.api+json or application/json) 415, JSON 400 `parse_error`, body shape 400
`invalid` with source.pointer; for GET, query parameters 400 with source.parameter, unknown ids
404; the list endpoints' own checks are in list_routes.py.

It also simulates Klaviyo's sending (DESIGN.md, "Who decides, who sends"): flows configured
through the control endpoints start on events of their trigger metric and "send" their
messages when due by the sandbox's clock, recorded rendered, or skipped or cancelled with why
(rules: dispatcher/sandbox/klaviyo/flows.py; scheduling: dispatcher/sandbox/common/flows.py).
Campaigns made through the API are sent the same way (campaigns.py): a send job makes the
campaign Scheduled (a static time still ahead on the sandbox's clock) or Sending, and when due
it goes to every profile in an included list and in no excluded one, as the account holds
them then, each message recorded (common/campaign_sends.py): an email to a profile SUBSCRIBED
to email marketing with no suppression (else skipped: unsubscribed, never subscribed,
suppressed), an SMS to one with a phone and SMS consent, a push to one with a device token
(AUTHORIZED or PROVISIONAL: ASSUMED). Subjects and bodies are rendered with Klaviyo's tags as
the dispatcher writes them (django_render.py: {{ email }}, {{ first_name|default:"FB" }},
{{ person|lookup:"key"|default:"FB" }}, values html-escaped in an email's html); an email
carries Klaviyo's List-Unsubscribe and List-Unsubscribe-Post headers. A message record keeps
the values the templates read, not the rendered text: 500,000 recipients send in 2 to 3 s and
cost about 130 bytes each; seeded engagement is drawn and reported afterwards from a
background thread (campaign_engagement.py: 560,000 webhook events delivered within about
50 s, the reporting pausing while 20,000 wait to go). ASSUMED
beyond what the contract says: only the immediate and static (UTC, is_local false) send
strategies; a tag the sandbox cannot read is copied as written; SMS and push campaigns are
not engaged by the seeded engagement.
And it sends Klaviyo's webhooks (dispatcher/sandbox/klaviyo/webhook_events.py): received_email
(sent_sms) for each flow message sent, and the engagements POST /_sandbox/engagement tells it,
to the webhooks subscribed to the topic, signed with their secret_key, batched, retried with
the same external ids, from a background thread.

Control endpoints: the shared ones (dispatcher/sandbox/common/control.py: requests, rejections
with the error's `code`, faults, throttled with a bucket per endpoint and per opt-in throttle,
health; DELETE /_sandbox/requests also forgets the event index, the flows and their messages,
the campaigns' messages and the seeded engagement (not the campaigns and templates: account
state), the webhooks and their deliveries: it is this sandbox's reset between tests), the
simulated sending's (dispatcher/sandbox/common/flow_control.py; POST /_sandbox/clock sends the
campaigns that fell due too), and its own:

    GET    /_sandbox/clock                         {"now", "now_s", "offset_s"}
    POST   /_sandbox/clock                         {"advance_s": 3600}: the clock moves on
                                                   (never back); due messages go out; 200 +
                                                   the clock
    POST   /_sandbox/flows                         {"name", "trigger_metric", "exit_metric"?,
                                                    "filter_property"?, "messages": [{"delay_s",
                                                    "channel": "email"|"sms", "subject",
                                                    "body"}]} (or a list): 201 + the flows;
                                                   templates say {{ event.product_url }},
                                                   {{ event.lines.0.title }}, {{ person.
                                                   first_name }}
    GET    /_sandbox/flows;  DELETE /_sandbox/flows (flows, runs and messages: 204)
    GET    /_sandbox/messages[?email=&flow=&status=]   each message: id, flow, flow_name, run,
                                                   step, channel, email, to, status (scheduled,
                                                   sent, skipped, cancelled), reason, subject,
                                                   body, unique_id, scheduled_at, due_at,
                                                   decided_at

    GET    /_sandbox/campaign-messages[?campaign_id=&email=&status=&limit=&offset=]
                                                   {"messages": [{"id", "campaign_id",
                                                   "campaign_name", "channel", "email", "to",
                                                   "status": "sent" | "skipped", "reason",
                                                   "subject", "body", "headers", "sent_at"}],
                                                   "total"} (limit 1,000 unless given);
                                                   campaigns due are sent first
    GET    /_sandbox/campaign-messages/summary     {"campaigns": {"<id>": {"name", "sent",
                                                   "skipped"}}}
    GET    /_sandbox/campaign-messages/emails?campaign_id=   text/plain, the email of each
                                                   message sent, one a line
    POST   /_sandbox/campaign-engagement           {"seed": int, "default"?: {"delivered":
                                                    1.0, "opened": 0.0, "clicked": 0.0},
                                                    "by_subject"?: {"<subject template>":
                                                    {...}}}: how recipients of email
                                                   campaigns sent afterwards engage, drawn
                                                   with random.Random(f"{seed}:{message id}")
                                                   (delivered, then opened, then clicked at
                                                   the body's first link) and reported after
                                                   the send, from a background thread, as
                                                   POST /_sandbox/engagement reports one:
                                                   event_properties {"$message": <message
                                                   id>, "$campaign": <campaign id>, "URL"?};
                                                   GET reads it, DELETE turns it off (204)
    POST   /_sandbox/engagement                    {"email", "type": "delivered" | "opened" |
                                                    "clicked" | "bounced" | "spam" |
                                                    "unsubscribed" | "sms_unsubscribed",
                                                    "message_id"?, "url"? (clicked),
                                                    "bounce_type"?: "hard" | "soft",
                                                    "phone"?, "campaign_id"?, "reason"?}: what
                                                   the person did (common/engagement.py; a
                                                   campaign_id the sandbox sent: with its
                                                   message, else a flow's); its
                                                   effect on consent (unsubscribed: email
                                                   UNSUBSCRIBED; spam: also SPAM_COMPLAINT;
                                                   hard bounce: HARD_BOUNCE; sms_unsubscribed:
                                                   SMS UNSUBSCRIBED), then reported: 202
                                                   {"external_ids", "webhooks"}
    GET    /_sandbox/webhook-deliveries[?webhook=]  every delivery attempt: seq, webhook, url,
                                                   attempt, status (null: no answer), error,
                                                   external_ids, headers, body, answer,
                                                   sent_at
    GET    /_sandbox/events                        {unique_id: accepted submissions}
    GET    /_sandbox/events/total                  {"unique_ids": how many the above holds}: a
                                                   poll's answer whatever the events' number
    GET    /_sandbox/profiles[?email=a@b.c]        consent per profile, as the jobs above left
                                                   it: subscriptions.email.marketing{consent,
                                                   suppression[{reason}], can_receive_email_
                                                   marketing}, subscriptions.sms.marketing, lists
                                                   (rules: dispatcher/sandbox/klaviyo/consent.py)
    POST   /_sandbox/profiles                      {"email", fields, "properties", "location",
                                                    "consent": {"email": "UNSUBSCRIBED"},
                                                    "suppression": [...], "lists": [...]}: set a
                                                   profile directly (drift for reconcile tests)
    POST   /_sandbox/campaigns                     {"name", "channel"?, "status"?, "archived"?,
                                                    "send_time"?, "statistics"?: {counts}} (or a
                                                   list): 201 {"data": campaigns} (catalogue.py);
                                                   GET /_sandbox/campaigns
    GET    /_sandbox/lists                         each list: id, name, opt_in_process,
                                                   created, members (emails, else phones)
    DELETE /_sandbox/faults                        also lifts throttles
    POST   /_sandbox/throttles                     {"path": "/api/event-bulk-create-jobs",
                                                    "limit": 2, "window_s": 5} (or a list):
                                                   past `limit` requests in a window, 429 with
                                                   Retry-After = seconds left in the window
    GET    /_sandbox/throttles

Run it with `python -m dispatcher.sandbox` (dispatcher/sandbox/settings.py:
MARKETING_SANDBOX_ADDRESS, default 127.0.0.1:8090; MARKETING_SANDBOX_API_KEY to accept one key only;
MARKETING_SANDBOX_RATE_LIMITS=off only to measure ceilings; MARKETING_SANDBOX_IMPORT_PROCESSING_S),
or in-process with `start_sandbox()`.
"""

from dispatcher.sandbox.klaviyo.runner import Sandbox, start_sandbox
from dispatcher.sandbox.klaviyo.state import SandboxState, Throttle

__all__ = ["Sandbox", "SandboxState", "Throttle", "start_sandbox"]
