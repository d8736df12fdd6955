"""Flows and enrolments between their gRPC messages and the domain: reading a
changed flow checks every part and names each bad one by its path in the
request (`flow.trigger.event.event_type`); writing turns views back into
messages."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

from google.protobuf import duration_pb2
from marketing.v1 import flow_pb2
from marketing_runtime.timestamps import to_timestamp

from service.common.conversions import timestamp
from service.contacts.rules import contact_name
from service.errors import Violations
from service.flows.definitions import (
    Entry,
    EntryRule,
    Exits,
    FlowDefinition,
    ProviderFlow,
    State,
    Trigger,
    TriggerKind,
)
from service.flows.names import enrolment_name, flow_name
from service.flows.views import EnrolmentView
from service.segments import filters
from service.segments.messages import MAX_EVENT_TYPE, filter_message, read_filter
from service.segments.names import parse_segment_name, segment_name

MAX_DISPLAY_NAME = 200
MAX_DESCRIPTION = 2000
MAX_EXITS = 20
MIN_DELAY = timedelta(minutes=1)
MAX_COMPLETES_AFTER = timedelta(days=366)
MAX_NO_PURCHASE = timedelta(days=3653)
_PROVIDER_TEXT = re.compile(r"^[\x20-\x7e]{0,128}$")
_AUTOMATION_ID = re.compile(r"^[0-9]{0,20}$")
_RULES = {
    flow_pb2.EntryRule.KIND_ONCE_PER_CONTACT: EntryRule.ONCE_PER_CONTACT,
    flow_pb2.EntryRule.KIND_ONCE_PER_KEY: EntryRule.ONCE_PER_KEY,
    flow_pb2.EntryRule.KIND_REENTER_AFTER_EXIT: EntryRule.REENTER_AFTER_EXIT,
    flow_pb2.EntryRule.KIND_REENTER_AFTER_COOLDOWN: EntryRule.REENTER_AFTER_COOLDOWN,
}
_RULE_ENUMS = {rule: number for number, rule in _RULES.items()}
_STATE_ENUMS = {
    State.ACTIVE: flow_pb2.Enrolment.STATE_ACTIVE,
    State.COMPLETED: flow_pb2.Enrolment.STATE_COMPLETED,
    State.EXITED: flow_pb2.Enrolment.STATE_EXITED,
    State.REJECTED: flow_pb2.Enrolment.STATE_REJECTED,
}
STATES = {number: state for state, number in _STATE_ENUMS.items()}


def apply_update(
    v: Violations, flow: FlowDefinition, message: flow_pb2.Flow, paths: tuple[str, ...]
) -> FlowDefinition:
    """`flow` with the fields `paths` names taken from `message`, each checked."""
    changed = flow
    if "display_name" in paths:
        _check_text(v, "flow.display_name", message.display_name, MAX_DISPLAY_NAME, required=True)
        changed = replace(changed, display_name=message.display_name)
    if "description" in paths:
        _check_text(v, "flow.description", message.description, MAX_DESCRIPTION)
        changed = replace(changed, description=message.description)
    if "trigger" in paths:
        changed = replace(changed, trigger=read_trigger(v, "flow.trigger", message.trigger))
    if "entry_rule" in paths:
        changed = replace(changed, entry=read_entry(v, "flow.entry_rule", message.entry_rule))
    if "exit_conditions" in paths:
        changed = replace(changed, exits=read_exits(v, message))
    if "live" in paths:
        changed = replace(changed, live=message.live)
    if "provider" in paths:
        changed = replace(changed, provider=read_provider(v, message.provider))
    if "completes_after" in paths:
        length = _duration(
            v, "flow.completes_after", message.completes_after, MIN_DELAY, MAX_COMPLETES_AFTER
        )
        changed = replace(changed, completes_after=length or flow.completes_after)
    return changed


def read_trigger(v: Violations, path: str, message: flow_pb2.FlowTrigger) -> Trigger:
    kind = message.WhichOneof("kind")
    if kind == "event":
        event = message.event
        _check_event_type(v, f"{path}.event.event_type", event.event_type)
        node = None
        if event.HasField("contact_filter"):
            node = read_filter(v, f"{path}.event.contact_filter", event.contact_filter)
        return Trigger(TriggerKind.EVENT, event_type=event.event_type, contact_filter=node)
    if kind == "segment_entered":
        segment = parse_segment_name(v, f"{path}.segment_entered", message.segment_entered)
        return Trigger(TriggerKind.SEGMENT_ENTERED, segment_id=segment)
    if kind == "no_purchase_for":
        idle = _duration(
            v, f"{path}.no_purchase_for", message.no_purchase_for, MIN_DELAY, MAX_NO_PURCHASE
        )
        return Trigger(TriggerKind.NO_PURCHASE, no_purchase_for=idle)
    if kind == "registration" and message.registration:
        return Trigger(TriggerKind.REGISTRATION)
    if kind == "back_in_stock" and message.back_in_stock:
        return Trigger(TriggerKind.BACK_IN_STOCK)
    v.add(
        path,
        "REQUIRED",
        "one of event, segment_entered, no_purchase_for, registration=true, back_in_stock=true",
    )
    return Trigger(TriggerKind.REGISTRATION)


def read_entry(v: Violations, path: str, message: flow_pb2.EntryRule) -> Entry:
    rule = _RULES.get(message.kind)
    if rule is None:
        v.add(f"{path}.kind", "REQUIRED", "an entry rule kind")
        return Entry(EntryRule.ONCE_PER_CONTACT)
    key = None
    if rule is EntryRule.ONCE_PER_KEY:
        keys = message.key_property.split(".")
        good = 0 < len(keys) <= filters.MAX_PATH_KEYS and all(
            0 < len(k) <= filters.MAX_KEY and "\x00" not in k for k in keys
        )
        if not message.key_property or not good:
            v.add(
                f"{path}.key_property",
                "INVALID_PROPERTY",
                f"dot-separated keys, at most {filters.MAX_PATH_KEYS} of 1 to "
                f"{filters.MAX_KEY} characters",
            )
        key = message.key_property
    cooldown = None
    if rule is EntryRule.REENTER_AFTER_COOLDOWN:
        cooldown = _duration(v, f"{path}.cooldown", message.cooldown, MIN_DELAY, MAX_NO_PURCHASE)
    return Entry(rule, key_property=key, cooldown=cooldown)


def read_exits(v: Violations, message: flow_pb2.Flow) -> Exits:
    if len(message.exit_conditions) > MAX_EXITS:
        v.add("flow.exit_conditions", "TOO_MANY", f"at most {MAX_EXITS} exit conditions")
    events: list[str] = []
    segments: list[str] = []
    unsubscribed = False
    for index, condition in enumerate(message.exit_conditions):
        path = f"flow.exit_conditions[{index}]"
        kind = condition.WhichOneof("kind")
        if kind == "event_type":
            _check_event_type(v, f"{path}.event_type", condition.event_type)
            events.append(condition.event_type)
        elif kind == "segment_left":
            segment = parse_segment_name(v, f"{path}.segment_left", condition.segment_left)
            if segment:
                segments.append(segment)
        elif kind == "unsubscribed" and condition.unsubscribed:
            unsubscribed = True
        else:
            v.add(path, "REQUIRED", "one of event_type, segment_left, unsubscribed=true")
    return Exits(tuple(dict.fromkeys(events)), tuple(dict.fromkeys(segments)), unsubscribed)


def read_provider(v: Violations, message: flow_pb2.ProviderFlow) -> ProviderFlow:
    for field in (
        "klaviyo_start_metric",
        "klaviyo_exit_metric",
        "klaviyo_property",
        "klaviyo_flow_id",
    ):
        if not _PROVIDER_TEXT.fullmatch(getattr(message, field)):
            v.add(
                f"flow.provider.{field}", "INVALID_TEXT", "at most 128 printable ASCII characters"
            )
    if not _AUTOMATION_ID.fullmatch(message.activecampaign_automation_id):
        v.add(
            "flow.provider.activecampaign_automation_id",
            "INVALID_ID",
            "an ActiveCampaign automation id: digits",
        )
    return ProviderFlow(
        message.klaviyo_start_metric,
        message.klaviyo_exit_metric,
        message.klaviyo_property,
        message.activecampaign_automation_id,
        message.klaviyo_flow_id,
    )


def _check_event_type(v: Violations, path: str, event_type: str) -> None:
    if not event_type or len(event_type) > MAX_EVENT_TYPE or "\x00" in event_type:
        v.add(path, "REQUIRED", f"an event type of 1 to {MAX_EVENT_TYPE} characters")


def _check_text(v: Violations, path: str, text: str, most: int, *, required: bool = False) -> None:
    if required and not text.strip():
        v.add(path, "REQUIRED", "must not be empty")
    elif len(text) > most:
        v.add(path, "TOO_LONG", f"at most {most} characters")


def _duration(
    v: Violations, path: str, message: duration_pb2.Duration, least: timedelta, most: timedelta
) -> timedelta | None:
    if message.nanos or not least.total_seconds() <= message.seconds <= most.total_seconds():
        v.add(path, "OUT_OF_RANGE", f"whole seconds from {least} to {most}")
        return None
    return timedelta(seconds=message.seconds)


def flow_message(flow: FlowDefinition) -> flow_pb2.Flow:
    message = flow_pb2.Flow(
        name=flow_name(flow.id),
        display_name=flow.display_name,
        description=flow.description,
        entry_rule=_entry_message(flow.entry),
        live=flow.live,
        provider=flow_pb2.ProviderFlow(
            klaviyo_start_metric=flow.provider.klaviyo_start_metric,
            klaviyo_exit_metric=flow.provider.klaviyo_exit_metric,
            klaviyo_property=flow.provider.klaviyo_property,
            activecampaign_automation_id=flow.provider.activecampaign_automation_id,
            klaviyo_flow_id=flow.provider.klaviyo_flow_id,
        ),
        built_in=flow.built_in,
        active_enrolments=flow.active_enrolments,
        create_time=timestamp(flow.created_at),
        update_time=timestamp(flow.updated_at),
    )
    message.completes_after.FromTimedelta(flow.completes_after)
    _write_trigger(message.trigger, flow.trigger)
    message.exit_conditions.extend(
        [flow_pb2.ExitCondition(event_type=e) for e in flow.exits.events]
        + [flow_pb2.ExitCondition(segment_left=segment_name(s)) for s in flow.exits.segments]
        + ([flow_pb2.ExitCondition(unsubscribed=True)] if flow.exits.unsubscribed else [])
    )
    return message


def _write_trigger(message: flow_pb2.FlowTrigger, trigger: Trigger) -> None:
    if trigger.kind is TriggerKind.EVENT:
        message.event.event_type = trigger.event_type or ""
        if trigger.contact_filter is not None:
            message.event.contact_filter.CopyFrom(filter_message(trigger.contact_filter))
    elif trigger.kind is TriggerKind.SEGMENT_ENTERED:
        message.segment_entered = segment_name(trigger.segment_id or "")
    elif trigger.kind is TriggerKind.NO_PURCHASE:
        message.no_purchase_for.FromTimedelta(trigger.no_purchase_for or timedelta())
    elif trigger.kind is TriggerKind.BACK_IN_STOCK:
        message.back_in_stock = True
    else:
        message.registration = True


def _entry_message(entry: Entry) -> flow_pb2.EntryRule:
    message = flow_pb2.EntryRule(
        kind=_RULE_ENUMS[entry.rule], key_property=entry.key_property or ""
    )
    if entry.cooldown is not None:
        message.cooldown.FromTimedelta(entry.cooldown)
    return message


def enrolment_message(view: EnrolmentView) -> flow_pb2.Enrolment:
    message = flow_pb2.Enrolment(
        name=enrolment_name(view.flow_id, view.id),
        contact=contact_name(view.contact_id),
        email=view.email,
        state=_STATE_ENUMS[view.state],
        entry_key=view.entry_key,
        create_time=timestamp(view.created_at),
        end_time=timestamp(view.ended_at),
        exit_reason=view.exit_reason or "",
        rejection_reason=view.rejection_reason or "",
    )
    cause = message.cause
    if view.cause_kind is TriggerKind.EVENT:
        cause.event_id = view.cause_ref
    elif view.cause_kind is TriggerKind.SEGMENT_ENTERED:
        cause.segment_entered = segment_name(view.cause_ref)
    elif view.cause_kind is TriggerKind.NO_PURCHASE and view.cause_time is not None:
        cause.last_purchase_time.CopyFrom(to_timestamp(view.cause_time))
    elif view.cause_kind is TriggerKind.REGISTRATION and view.cause_time is not None:
        cause.registration_time.CopyFrom(to_timestamp(view.cause_time))
    elif view.cause_kind is TriggerKind.BACK_IN_STOCK:
        cause.back_in_stock_subscription = f"backInStockSubscriptions/{view.cause_ref}"
    return message
