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
    POST /api/data-privacy-deletion-jobs          202 (exactly one identifier)

Checks, in order: queued fault; unknown path 404; method 405; Authorization
`Klaviyo-API-Key <key>` 401; `revision` header 400; Content-Type (application/vnd.api+json or
application/json) 415; JSON 400 `parse_error`; body shape 400 `invalid` with source.pointer.

Control endpoints (no authentication; never faulted or recorded):

    GET    /_sandbox/requests[?path=/api/events]   accepted requests: seq, method, path,
                                                   received_at, headers, body
    DELETE /_sandbox/requests                      forget requests, rejections, the event index
    GET    /_sandbox/events                        {unique_id: accepted submissions}
    GET    /_sandbox/profiles[?email=a@b.c]        consent per profile, as the jobs above left
                                                   it: subscriptions.email.marketing{consent,
                                                   suppression[{reason}], can_receive_email_
                                                   marketing}, subscriptions.sms.marketing, lists
                                                   (rules: dispatcher/sandbox/consent.py)
    GET    /_sandbox/rejections                    answered errors: seq, path, status, code
    POST   /_sandbox/faults                        {"path": "/api/event-bulk-create-jobs",
                                                    "status": 429, "times": 2, "retry_after": 3}
                                                   (or a list); latency only: {"latency_ms": 500}
    GET    /_sandbox/faults, DELETE /_sandbox/faults (also lifts throttles)
    POST   /_sandbox/throttles                     {"path": "/api/event-bulk-create-jobs",
                                                    "limit": 2, "window_s": 5} (or a list):
                                                   past `limit` requests in a window, 429 with
                                                   Retry-After = seconds left in the window
    GET    /_sandbox/throttles
    GET    /_sandbox/health

Run it with `python -m dispatcher.sandbox` (MARKETING_SANDBOX_ADDRESS, default 127.0.0.1:8090;
MARKETING_SANDBOX_API_KEY to accept one key only), or in-process with `start_sandbox()`.
"""

from dispatcher.sandbox.runner import Sandbox, start_sandbox
from dispatcher.sandbox.state import Fault, SandboxState, Throttle

__all__ = ["Fault", "Sandbox", "SandboxState", "Throttle", "start_sandbox"]
