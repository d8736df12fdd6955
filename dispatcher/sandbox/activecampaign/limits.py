"""ActiveCampaign's rate limits (shared/PROVIDERS.md, PROVIDERS-API.md "Bulk import").

- 5 requests/s per account, shared by every key: every /api/3 call draws from it.
- Bulk import, besides: 100 multi-contact and 20 single-contact calls a minute, refused with a
  400 body rather than a 429.
- Event tracking (trackcmp's POST /event): its limits are not published; the sandbox ASSUMES
  a bucket of its own of 5/s.

Windows are fixed and aligned to the epoch: a second's calls are those whose epoch second is
the same, a minute's those in the same epoch minute.
"""

from __future__ import annotations

from dispatcher.sandbox.common.windows import RateWindow

API_PER_SECOND = RateWindow("api", 5, 1)
EVENTS_PER_SECOND = RateWindow("event", 5, 1)
IMPORTS_PER_MINUTE = RateWindow("bulk_import", 100, 60)
SINGLE_IMPORTS_PER_MINUTE = RateWindow("bulk_import_single_contact", 20, 60)
WINDOWS = (API_PER_SECOND, EVENTS_PER_SECOND, IMPORTS_PER_MINUTE, SINGLE_IMPORTS_PER_MINUTE)
