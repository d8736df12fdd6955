"""Back-in-stock RPCs: requests to waitlist use cases, views back to messages."""

from __future__ import annotations

from urllib.parse import urlsplit

from marketing.v1 import back_in_stock_pb2 as bp
from marketing.v1 import service_pb2 as pb
from marketing_runtime.clock import Clock

from service.common.conversions import timestamp
from service.common.pagination import PageTokens
from service.common.validation import check_request_id, enum_values
from service.contacts.rules import contact_name, parse_contact_name
from service.errors import Violations
from service.events.payload_json import payload_dict
from service.flows.names import enrolment_name
from service.storage.database import Database
from service.waitlists import restocks, rules
from service.waitlists.restocks import RestockView
from service.waitlists.rules import SubscriptionView
from service.waitlists.states import STATES

BACK_IN_STOCK_FLOW = "back-in-stock"
MAX_QUANTITY = 10**9
MAX_URL = 2000
MAX_TEXT = 500
MAX_CATEGORIES = 20
_STATE_ENUMS = {state: number for number, state in enumerate(STATES, start=1)}
_STATES = {number: state for state, number in _STATE_ENUMS.items()}
NAME_PREFIX = "backInStockSubscriptions/"


class WaitlistHandlers:
    def __init__(self, db: Database, tokens: PageTokens, *, clock: Clock) -> None:
        self._db = db
        self._tokens = tokens
        self._clock = clock

    async def subscribe(
        self, request: pb.SubscribeBackInStockRequest
    ) -> pb.SubscribeBackInStockResponse:
        view, created = await rules.subscribe(
            self._db,
            email=request.email,
            product_id=request.product_id,
            variant_id=request.variant_id,
            source=request.source,
            now=self._clock(),
        )
        return pb.SubscribeBackInStockResponse(
            subscription=subscription_message(view), created=created
        )

    async def unsubscribe(
        self, request: pb.UnsubscribeBackInStockRequest
    ) -> pb.UnsubscribeBackInStockResponse:
        view = await rules.unsubscribe(
            self._db,
            email=request.email,
            product_id=request.product_id,
            variant_id=request.variant_id,
            now=self._clock(),
        )
        return pb.UnsubscribeBackInStockResponse(subscription=subscription_message(view))

    async def list_subscriptions(
        self, request: pb.ListBackInStockSubscriptionsRequest
    ) -> pb.ListBackInStockSubscriptionsResponse:
        v = Violations()
        contact_id = None
        if bool(request.product_id) == bool(request.contact):
            v.add("product_id", "ONE_OF", "give either product_id or contact")
        elif request.contact:
            contact_id = parse_contact_name(v, "contact", request.contact)
        else:
            rules.check_product(v, request.product_id, request.variant_id)
        states = enum_values(v, "states", request.states, _STATES)
        page = await rules.list_subscriptions(
            self._db,
            self._tokens,
            product_id=request.product_id,
            variant_id=request.variant_id,
            contact_id=contact_id,
            states=states,
            page_size=request.page_size,
            page_token=request.page_token,
            violations=v,
        )
        return pb.ListBackInStockSubscriptionsResponse(
            subscriptions=[subscription_message(s) for s in page.subscriptions],
            next_page_token=page.next_page_token,
        )

    async def notify(self, request: pb.NotifyBackInStockRequest) -> pb.NotifyBackInStockResponse:
        v = Violations()
        rules.check_product(v, request.product_id, request.variant_id)
        quantity = request.quantity if request.HasField("quantity") else None
        if quantity is not None and not 1 <= quantity <= MAX_QUANTITY:
            v.add("quantity", "OUT_OF_RANGE", f"1 to {MAX_QUANTITY:,}, or unset for everyone")
        _check_product(v, request)
        rid = check_request_id(v, "request_id", request.request_id)
        v.raise_if_any()
        product = payload_dict(request.product, [])
        product.setdefault("product_id", request.product_id)
        restock = await restocks.notify(
            self._db,
            product_id=request.product_id,
            variant_id=request.variant_id,
            quantity=quantity,
            product=product,
            request_id=rid,
            now=self._clock(),
        )
        return pb.NotifyBackInStockResponse(restock=_restock_message(restock, request))


def _check_product(v: Violations, request: pb.NotifyBackInStockRequest) -> None:
    """The product as every notification carries it: its purchase link an
    https URL, and small enough for any provider's event (it goes into each
    of the waitlist's enrolments)."""
    product = request.product
    url = urlsplit(product.url)
    if url.scheme != "https" or not url.netloc or len(product.url) > MAX_URL:
        v.add("product.url", "INVALID_URL", f"the purchase link: an https URL, at most {MAX_URL}")
    if product.image_url and (
        len(product.image_url) > MAX_URL or not product.image_url.startswith("https://")
    ):
        v.add("product.image_url", "INVALID_URL", f"an https URL, at most {MAX_URL}")
    if product.product_id and product.product_id != request.product_id:
        v.add("product.product_id", "MISMATCH", "empty, or the request's product_id")
    for name in ("title", "sku"):
        if len(getattr(product, name)) > MAX_TEXT:
            v.add(f"product.{name}", "TOO_LONG", f"at most {MAX_TEXT} characters")
    if len(product.categories) > MAX_CATEGORIES or any(
        len(c) > MAX_TEXT for c in product.categories
    ):
        v.add(
            "product.categories",
            "TOO_LONG",
            f"at most {MAX_CATEGORIES} of at most {MAX_TEXT} characters",
        )


def subscription_message(view: SubscriptionView) -> bp.BackInStockSubscription:
    return bp.BackInStockSubscription(
        name=f"{NAME_PREFIX}{view.id}",
        contact=contact_name(view.contact_id),
        email=view.email,
        product_id=view.product_id,
        variant_id=view.variant_id,
        state=_STATE_ENUMS[view.state],  # type: ignore[arg-type]
        reason=view.reason or "",
        source=view.source,
        create_time=timestamp(view.created_at),
        end_time=timestamp(view.ended_at),
        enrolment=""
        if view.enrolment_id is None
        else enrolment_name(BACK_IN_STOCK_FLOW, view.enrolment_id),
    )


def _restock_message(view: RestockView, request: pb.NotifyBackInStockRequest) -> bp.Restock:
    return bp.Restock(
        name=f"restocks/{view.id}",
        product_id=view.product_id,
        variant_id=view.variant_id,
        product=request.product,
        picked=view.picked,
        create_time=timestamp(view.created_at),
    )
