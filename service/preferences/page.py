"""The preference pages over HTTP (Starlette, on the runtime's embedded uvicorn).

    GET  /preferences/{token}   the page: changes nothing
    POST /preferences/{token}   List-Unsubscribe=One-Click (RFC 8058): recorded durably
                                in one statement and applied within the one-click
                                worker's bound, 200; a form's action=save | unsubscribe_all |
                                subscribe_again: done, then 303 back to the page
                                (post/redirect/get), which says what was done

A forged or edited link is 404 and an expired one 410, and neither changes
anything. The pages need no JavaScript and no cookies: the link is the
credential, so answers are never cached or sent on as a referrer."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from importlib.resources import files

from liquid import DictLoader, Environment
from marketing_runtime.clock import Clock
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from service.metrics import PREFERENCE_REQUESTS
from service.preferences import rules
from service.preferences.links import LinkProblem, PreferenceLinks
from service.storage.database import Database

TITLE = "Your message preferences"
_NOTICES = {
    "saved": "Your preferences are saved.",
    "unsubscribed": "You are unsubscribed from all our messages.",
    "subscribed": "You are subscribed to our emails again.",
    "undeliverable": "Your choice is saved, but we cannot email this address: mail to it "
    "bounced, or it was reported as spam.",
}
_PROBLEMS = {
    LinkProblem.FORGED: (404, "This link is not valid. Use the link in our latest message."),
    LinkProblem.EXPIRED: (410, "This link has expired. Use the link in our latest message."),
}
_GONE = (404, "We hold no messages preferences for this link any more.")
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}
_ONE_CLICK = ("List-Unsubscribe", "One-Click")
_ACTIONS = frozenset({"save", "unsubscribe_all", "subscribe_again"})
_ACTION = "marketing.action"  # where a POST's handler leaves what it was, for the metrics


@dataclass(frozen=True)
class PageSettings:
    sms_wording_version: str
    sms_wording: str


def _templates() -> Environment:
    source = (files("service.preferences") / "templates" / "page.liquid").read_text()
    return Environment(loader=DictLoader({"page": source}), autoescape=True)


def create_app(
    db: Database, links: PreferenceLinks, settings: PageSettings, *, clock: Clock
) -> Starlette:
    page = _templates().get_template("page")

    def render(status: int, **context: object) -> Response:
        html = page.render(title=TITLE, **context)
        return Response(html, status, media_type="text/html; charset=utf-8", headers=_HEADERS)

    def whose(request: Request) -> uuid.UUID | Response:
        """The contact the link opens, or the page saying why it opens none."""
        resolved = links.resolve(request.path_params["token"])
        if resolved.contact_id is not None:
            return resolved.contact_id
        assert resolved.problem is not None
        status, problem = _PROBLEMS[resolved.problem]
        return render(status, problem=problem)

    async def show(request: Request) -> Response:
        contact_id = whose(request)
        if isinstance(contact_id, Response):
            return contact_id
        found = await rules.read(db, contact_id)
        if found is None:
            return render(_GONE[0], problem=_GONE[1])
        notice = _NOTICES.get(request.query_params.get("done", ""), "")
        return render(200, notice=notice, sms_wording=settings.sms_wording, **asdict(found))

    async def change(request: Request) -> Response:
        contact_id = whose(request)
        if isinstance(contact_id, Response):
            return contact_id
        form = await request.form()
        if form.get(_ONE_CLICK[0]) == _ONE_CLICK[1]:
            request.scope[_ACTION] = "one_click"
            if not await rules.one_click(db, contact_id, clock=clock):
                return render(_GONE[0], problem=_GONE[1])
            return PlainTextResponse("Unsubscribed.", headers=_HEADERS)
        email = await rules.email_of(db, contact_id)
        if email is None:
            return render(_GONE[0], problem=_GONE[1])
        action = str(form.get("action") or "")
        request.scope[_ACTION] = action if action in _ACTIONS else "unknown"
        done = await _act(action, contact_id, email, form, request)
        if done is None:
            return PlainTextResponse("Unknown action.", 400, headers=_HEADERS)
        return RedirectResponse(f"{request.url.path}?done={done}", 303, headers=_HEADERS)

    async def _act(
        action: str, contact_id: uuid.UUID, email: str, form: FormData, request: Request
    ) -> str | None:
        visitor = rules.Visitor(
            request.client.host if request.client else "", request.headers.get("user-agent", "")
        )
        if action == "save":
            wanted = rules.Wanted(*(_changed(form, name) for name in ("email", "sms", "push")))
            await rules.save(
                db,
                contact_id,
                wanted,
                visitor,
                sms_wording_version=settings.sms_wording_version,
                clock=clock,
            )
            return "saved"
        if action == "unsubscribe_all":
            await rules.unsubscribe_all(db, email, clock=clock)
            return "unsubscribed"
        if action == "subscribe_again":
            mailable = await rules.subscribe_again(db, email, visitor, clock=clock)
            return "subscribed" if mailable else "undeliverable"
        return None

    def timed(
        handler: Callable[[Request], Awaitable[Response]], action_of: Callable[[Request], str]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            began = time.perf_counter()
            response = await handler(request)
            PREFERENCE_REQUESTS.labels(action_of(request), str(response.status_code)).observe(
                time.perf_counter() - began
            )
            return response

        return run

    routes = [
        Route("/preferences/{token}", timed(show, lambda _: "view"), methods=["GET"]),
        Route("/preferences/{token}", timed(change, _posted_action), methods=["POST"]),
    ]
    return Starlette(routes=routes)


def _changed(form: FormData, channel: str) -> bool | None:
    """What the person set a channel to on the page, when they changed it: None for a
    channel the page did not show, or left as it showed it (so a page opened before
    a change made elsewhere undoes nothing). A ticked box is in the form, an
    unticked one is not."""
    shown = form.get(f"shown_{channel}")
    if shown not in ("on", "off"):
        return None
    ticked = channel in form
    return None if ticked == (shown == "on") else ticked


def _posted_action(request: Request) -> str:
    """The metrics label of a POST, from what the handler stored while reading it."""
    return str(request.scope.get(_ACTION, "post"))
