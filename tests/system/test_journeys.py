"""The seed's journeys end to end, against each provider's sandbox, which
simulates the provider's flows (Klaviyo: flows on our metrics; ActiveCampaign:
automations we enrol people in) and records the message each person gets:
register → welcome; abandon a cart → recovery an hour later (the flow
worker's clock moved on, the service's own stays real); purchase →
post-purchase review request; unsubscribe → no further email; back in stock
→ the waiting person notified (with Klaviyo, the link names the product)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from google.protobuf import field_mask_pb2
from marketing.v1 import event_pb2
from marketing.v1 import flow_pb2 as fp
from marketing.v1 import service_pb2 as pb
from marketing_runtime.clock import utc_now

from service.workers.flow_worker import FlowWorker
from tests.builders import line, placed_order, upsert
from tests.harness import ServiceHarness, assert_eventually, unique_email
from tests.system.provider_state import SystemProvider

# Each of our flows as the provider runs it: its messages, delay 0 unless said.
MESSAGES: dict[str, list[dict[str, Any]]] = {
    "welcome": [
        {"subject": "Welcome to the shop", "body": "Glad you are here."},
        {"delay_s": 3 * 86_400, "subject": "Three days in", "body": "A tip for you."},
    ],
    "cart-recovery": [
        {"subject": "You left something behind", "body": "{{ event.cart.items.0.title }}"}
    ],
    "post-purchase": [{"subject": "How was your order?", "body": "Leave us a review."}],
    "back-in-stock": [{"subject": "It is back", "body": "Buy it here: {{ event.purchase_url }}"}],
}


@pytest.fixture(scope="module")
def automations(
    bus_harness: ServiceHarness, provider_under_test: SystemProvider
) -> Iterator[dict[str, str]]:
    """ActiveCampaign: an automation per flow, linked to it (our flow's
    provider settings) for the module; Klaviyo needs none."""
    linked: dict[str, str] = {}
    if provider_under_test.name == "activecampaign":
        sandbox: Any = provider_under_test.sandbox  # type: ignore[attr-defined]
        for flow_id in MESSAGES:
            linked[flow_id] = sandbox.add_automation(flow_id)
            _link_automation(bus_harness, flow_id, linked[flow_id])
    yield linked
    for flow_id in linked:
        _link_automation(bus_harness, flow_id, "")


@pytest.fixture
def journeys(provider: SystemProvider, automations: dict[str, str]) -> str:
    """The provider's side of our flows (a test's provider starts cleared, its
    flows with it); the provider's name."""
    sandbox: Any = provider.sandbox  # type: ignore[attr-defined]
    for flow_id, messages in MESSAGES.items():
        steps = [{"channel": "email", "delay_s": 0} | m for m in messages]
        if provider.name == "klaviyo":
            metric = flow_id.replace("-", "_")
            sandbox.add_flow(
                name=flow_id,
                trigger_metric=f"{metric}_flow_started",
                exit_metric=f"{metric}_flow_exited",
                filter_property=f"flow_{metric}",
                messages=steps,
            )
        else:
            sandbox.add_flow(
                automation=automations[flow_id], messages=[_without_context(m) for m in steps]
            )
    return provider.name


def _without_context(message: dict[str, Any]) -> dict[str, Any]:
    """ActiveCampaign's automations see the contact, not our context: the
    link of a back-in-stock message is not theirs to render."""
    return message | {"body": "Open the shop."} if "{{ event." in message["body"] else message


def _link_automation(harness: ServiceHarness, flow_id: str, automation: str) -> None:
    flow = fp.Flow(
        name=f"flows/{flow_id}",
        provider=fp.ProviderFlow(
            klaviyo_start_metric=f"{flow_id.replace('-', '_')}_flow_started",
            klaviyo_exit_metric=f"{flow_id.replace('-', '_')}_flow_exited",
            klaviyo_property=f"flow_{flow_id.replace('-', '_')}",
            activecampaign_automation_id=automation,
        ),
    )
    mask = field_mask_pb2.FieldMask(paths=["provider"])
    harness.stub.UpdateFlow(pb.UpdateFlowRequest(flow=flow, update_mask=mask))


def _messages(provider: SystemProvider, email: str, flow: str, status: str = "sent") -> list[Any]:
    sandbox: Any = provider.sandbox  # type: ignore[attr-defined]
    return list(sandbox.messages(email=email, flow=flow, status=status))


def _received(provider: SystemProvider, email: str, flow: str) -> list[Any]:
    found: list[Any] = []

    def arrived() -> bool:
        found[:] = _messages(provider, email, flow)
        return bool(found)

    try:
        assert_eventually(arrived, timeout_s=30)
    except AssertionError as missing:  # say what the provider made of the person
        sandbox: Any = provider.sandbox  # type: ignore[attr-defined]
        raise AssertionError(f"{missing}; messages: {sandbox.messages(email=email)}") from None
    return found


def _sign_up(system: ServiceHarness, email: str) -> None:
    """A storefront's sign-up: the contact, then the newsletter box ticked
    (email consent, and at ActiveCampaign an active list subscription: a
    contact subscribed to no list gets no automation email there)."""
    system.stub.UpsertContact(upsert(email, first_name="Ada"))
    system.stub.SubscribeNewsletter(pb.SubscribeNewsletterRequest(email=email, source="signup"))


def test_a_registration_gets_the_welcome_email(journeys, system, provider) -> None:
    email = unique_email("welcome")
    _sign_up(system, email)
    (message,) = _received(provider, email, "welcome")
    assert message["subject"] == "Welcome to the shop"


def test_an_abandoned_cart_gets_the_recovery_email_an_hour_later(
    journeys, system, provider
) -> None:
    email = unique_email("cart")
    _sign_up(system, email)
    item = line("mug-350")
    item.title = "Stoneware mug, 350 ml"
    cart = event_pb2.Cart(cart_id=f"cart-{uuid.uuid4().hex[:6]}", items=[item])
    added = event_pb2.Event(email=email, added_to_cart=event_pb2.AddedToCart(item=item, cart=cart))
    system.stub.TrackEvent(pb.TrackEventRequest(event=added))
    assert_eventually(lambda: _cart_timer_set(system, email), timeout_s=15)
    assert _messages(provider, email, "cart-recovery") == []
    an_hour_on = FlowWorker(system.db, lambda: utc_now() + timedelta(hours=1, seconds=1))
    system.run(an_hour_on.fire_all_due())
    (message,) = _received(provider, email, "cart-recovery")
    if journeys == "klaviyo":
        assert message["body"] == "Stoneware mug, 350 ml"


def _cart_timer_set(system: ServiceHarness, email: str) -> bool:
    return bool(
        system.sql(
            "SELECT 1 FROM marketing_timer t JOIN marketing_contact c ON c.id = t.contact_id"
            " WHERE c.email = :email AND t.kind = 'cart'",
            email=email,
        )
    )


def test_a_purchase_gets_the_review_request(journeys, system, provider) -> None:
    email = unique_email("buyer")
    _sign_up(system, email)
    system.stub.TrackEvent(pb.TrackEventRequest(event=placed_order(email, "o-journey")))
    (message,) = _received(provider, email, "post-purchase")
    assert message["subject"] == "How was your order?"


def test_after_unsubscribing_no_further_email(journeys, system, provider) -> None:
    email = unique_email("leaving")
    _sign_up(system, email)
    _received(provider, email, "welcome")  # the first welcome email; the second waits 3 days
    system.stub.Unsubscribe(pb.UnsubscribeRequest(email=email))
    system.stub.TrackEvent(pb.TrackEventRequest(event=placed_order(email, "o-after")))
    assert_eventually(lambda: _welcome_exited(system, email), timeout_s=15)
    assert_eventually(
        lambda: (
            bool(_messages(provider, email, "welcome", "cancelled"))
            or bool(_messages(provider, email, "welcome", "skipped"))
        ),
        timeout_s=30,
    )
    sandbox: Any = provider.sandbox
    sandbox.advance_clock(4 * 86_400)
    assert len(_messages(provider, email, "welcome")) == 1, "the three-day email never went"
    assert _messages(provider, email, "post-purchase") == []


def _welcome_exited(system: ServiceHarness, email: str) -> bool:
    return bool(
        system.sql(
            "SELECT 1 FROM marketing_enrolment e JOIN marketing_contact c ON c.id = e.contact_id"
            " WHERE c.email = :email AND e.flow_id = 'welcome' AND e.state = 'EXITED'",
            email=email,
        )
    )


def test_a_product_back_in_stock_reaches_its_waitlist(journeys, system, provider) -> None:
    email = unique_email("waiting")
    product_id = f"mug-{uuid.uuid4().hex[:6]}"
    url = f"https://shop.example.com/p/{product_id}"
    system.stub.SubscribeBackInStock(
        pb.SubscribeBackInStockRequest(email=email, product_id=product_id)
    )
    product = event_pb2.Product(product_id=product_id, title="Stoneware mug", url=url)
    system.stub.NotifyBackInStock(
        pb.NotifyBackInStockRequest(product_id=product_id, product=product)
    )
    (message,) = _received(provider, email, "back-in-stock")
    if journeys == "klaviyo":
        assert product_id in message["body"] and url in message["body"]
