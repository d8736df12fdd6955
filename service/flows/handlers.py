"""Flow RPCs: request messages to flow use cases, views back to messages."""

from __future__ import annotations

from marketing.v1 import service_pb2 as pb
from marketing_runtime.clock import Clock

from service.common.pagination import PageTokens
from service.common.validation import enum_values
from service.contacts.rules import parse_contact_name
from service.errors import Violations
from service.flows import rules
from service.flows.messages import STATES, apply_update, enrolment_message, flow_message
from service.flows.names import parse_enrolment_name, parse_flow_name
from service.storage.database import Database


class FlowHandlers:
    def __init__(self, db: Database, tokens: PageTokens, *, clock: Clock) -> None:
        self._db = db
        self._tokens = tokens
        self._clock = clock

    async def get(self, request: pb.GetFlowRequest) -> pb.GetFlowResponse:
        v = Violations()
        flow_id = parse_flow_name(v, "name", request.name)
        v.raise_if_any()
        flow = await rules.get_flow(self._db, flow_id=flow_id, name=request.name)
        return pb.GetFlowResponse(flow=flow_message(flow))

    async def list_flows(self, request: pb.ListFlowsRequest) -> pb.ListFlowsResponse:
        page = await rules.list_flows(
            self._db, self._tokens, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListFlowsResponse(
            flows=[flow_message(f) for f in page.flows], next_page_token=page.next_page_token
        )

    async def update(self, request: pb.UpdateFlowRequest) -> pb.UpdateFlowResponse:
        v = Violations()
        flow_id = parse_flow_name(v, "flow.name", request.flow.name)
        v.raise_if_any()
        paths = tuple(request.update_mask.paths)
        flow = await rules.update_flow(
            self._db,
            flow_id=flow_id,
            name=request.flow.name,
            change=lambda v, current: apply_update(v, current, request.flow, paths),
            paths=paths,
            now=self._clock(),
        )
        return pb.UpdateFlowResponse(flow=flow_message(flow))

    async def list_enrolments(self, request: pb.ListEnrolmentsRequest) -> pb.ListEnrolmentsResponse:
        v = Violations()
        flow_id = parse_flow_name(v, "parent", request.parent, any_flow=True)
        contact_id = None
        if request.contact:
            contact_id = parse_contact_name(v, "contact", request.contact)
        states = enum_values(v, "states", request.states, STATES)
        page = await rules.list_enrolments(
            self._db,
            self._tokens,
            parent=request.parent,
            flow_id=flow_id,
            contact_id=contact_id,
            states=states,
            page_size=request.page_size,
            page_token=request.page_token,
            violations=v,
        )
        return pb.ListEnrolmentsResponse(
            enrolments=[enrolment_message(e) for e in page.enrolments],
            next_page_token=page.next_page_token,
        )

    async def exit(self, request: pb.ExitEnrolmentRequest) -> pb.ExitEnrolmentResponse:
        v = Violations()
        flow_id, enrolment_id = parse_enrolment_name(v, "name", request.name)
        v.raise_if_any()
        assert enrolment_id is not None
        view = await rules.exit_enrolment(
            self._db,
            flow_id=flow_id,
            enrolment_id=enrolment_id,
            name=request.name,
            reason=request.reason,
            now=self._clock(),
        )
        return pb.ExitEnrolmentResponse(enrolment=enrolment_message(view))
