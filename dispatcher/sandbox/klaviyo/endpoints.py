"""Which endpoint a request names: method plus path template, as Klaviyo counts them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dispatcher.sandbox.klaviyo.campaigns import ASSIGN_TEMPLATE, CAMPAIGNS, SEND_JOBS
from dispatcher.sandbox.klaviyo.push_tokens import PUSH_TOKENS
from dispatcher.sandbox.klaviyo.templates import TEMPLATES
from dispatcher.sandbox.klaviyo.validation import ROUTES
from dispatcher.sandbox.klaviyo.webhook_book import WEBHOOK_TOPICS, WEBHOOKS

_SEGMENT = re.compile(r"\{[a-z_]+\}")


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str  # "/api/profile-bulk-import-jobs/{id}"
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = _SEGMENT.split(self.template)
        names = _SEGMENT.findall(self.template)
        regex = re.escape(parts[0])
        for name, rest in zip(names, parts[1:], strict=True):
            regex += f"(?P<{name[1:-1]}>[^/]+)" + re.escape(rest)
        object.__setattr__(self, "_pattern", re.compile(regex + "/?"))

    @property
    def name(self) -> str:
        return f"{self.method} {self.template}"

    def match(self, path: str) -> dict[str, str] | None:
        found = self._pattern.fullmatch(path)
        return None if found is None else found.groupdict()


PROFILES = "/api/profiles"
IMPORT_JOBS = "/api/profile-bulk-import-jobs"
ERASURE_JOBS = "/api/data-privacy-deletion-jobs"
LISTS = "/api/lists"
LIST_PROFILES = LISTS + "/{id}/relationships/profiles"
ENDPOINTS = (
    *(Endpoint("POST", path) for path in ROUTES),
    Endpoint("GET", IMPORT_JOBS + "/{id}"),
    Endpoint("GET", IMPORT_JOBS + "/{id}/import-errors"),
    Endpoint("GET", PROFILES),
    Endpoint("GET", PROFILES + "/{id}/lists"),
    Endpoint("GET", LISTS),
    Endpoint("POST", LISTS),
    Endpoint("POST", LIST_PROFILES),
    Endpoint("DELETE", LIST_PROFILES),
    Endpoint("GET", LISTS + "/{id}/profiles"),
    Endpoint("GET", WEBHOOKS),
    Endpoint("POST", WEBHOOKS),
    Endpoint("GET", WEBHOOKS + "/{id}"),
    Endpoint("DELETE", WEBHOOKS + "/{id}"),
    Endpoint("GET", WEBHOOK_TOPICS),
    Endpoint("GET", CAMPAIGNS),
    Endpoint("POST", CAMPAIGNS),
    Endpoint("GET", CAMPAIGNS + "/{id}"),
    Endpoint("POST", ASSIGN_TEMPLATE),
    Endpoint("POST", SEND_JOBS),
    Endpoint("GET", SEND_JOBS + "/{id}"),
    Endpoint("POST", TEMPLATES),
    Endpoint("DELETE", TEMPLATES + "/{id}"),
    Endpoint("GET", "/api/flows"),
    Endpoint("GET", "/api/metrics"),
    Endpoint("POST", "/api/campaign-values-reports"),
    Endpoint("POST", "/api/flow-values-reports"),
    Endpoint("POST", PUSH_TOKENS),
    Endpoint("GET", PUSH_TOKENS + "/{id}"),
    Endpoint("DELETE", PUSH_TOKENS + "/{id}"),
)


class NoEndpoint(Exception):
    """No endpoint has this path (`allow` empty: 404) or none takes this method (405)."""

    def __init__(self, allow: list[str]) -> None:
        super().__init__(allow)
        self.allow = allow


def resolve(method: str, path: str) -> tuple[Endpoint, dict[str, str]]:
    allow: list[str] = []
    for endpoint in ENDPOINTS:
        params = endpoint.match(path)
        if params is None:
            continue
        if endpoint.method == method:
            return endpoint, params
        allow.append(endpoint.method)
    raise NoEndpoint(allow)
