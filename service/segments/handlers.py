"""Segment RPCs: request messages to segment use cases, views back to messages."""

from __future__ import annotations

from marketing.v1 import segment_pb2
from marketing.v1 import service_pb2 as pb
from marketing_runtime.clock import Clock

from service.common.conversions import timestamp
from service.common.pagination import PageTokens
from service.contacts.handlers import contact_message
from service.errors import Violations
from service.segments import rules
from service.segments.lists import ListLink
from service.segments.messages import filter_message, read_filter
from service.segments.names import parse_segment_name, segment_name
from service.segments.rules import SegmentKind, SegmentView
from service.storage.database import Database

_KINDS = {
    segment_pb2.Segment.KIND_DYNAMIC: SegmentKind.DYNAMIC,
    segment_pb2.Segment.KIND_MANUAL: SegmentKind.MANUAL,
}
_KIND_ENUMS = {kind: number for number, kind in _KINDS.items()}


class SegmentHandlers:
    def __init__(self, db: Database, tokens: PageTokens, *, clock: Clock) -> None:
        self._db = db
        self._tokens = tokens
        self._clock = clock

    async def create(self, request: pb.CreateSegmentRequest) -> pb.CreateSegmentResponse:
        segment = request.segment
        v = Violations()
        node = None
        if segment.HasField("filter"):
            node = read_filter(v, "segment.filter", segment.filter)
        v.raise_if_any()
        new = rules.NewSegment(
            segment_id=request.segment_id,
            display_name=segment.display_name,
            description=segment.description,
            kind=_KINDS.get(segment.kind),
            filter=node,
            provider_list=_list_id(segment),
        )
        view = await rules.create_segment(self._db, new, now=self._clock())
        return pb.CreateSegmentResponse(segment=segment_message(view))

    async def get(self, request: pb.GetSegmentRequest) -> pb.GetSegmentResponse:
        v = Violations()
        segment_id = parse_segment_name(v, "name", request.name)
        v.raise_if_any()
        view = await rules.get_segment(self._db, segment_id=segment_id, name=request.name)
        return pb.GetSegmentResponse(segment=segment_message(view))

    async def list_segments(self, request: pb.ListSegmentsRequest) -> pb.ListSegmentsResponse:
        page = await rules.list_segments(
            self._db, self._tokens, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListSegmentsResponse(
            segments=[segment_message(view) for view in page.segments],
            next_page_token=page.next_page_token,
        )

    async def update(self, request: pb.UpdateSegmentRequest) -> pb.UpdateSegmentResponse:
        segment = request.segment
        v = Violations()
        segment_id = parse_segment_name(v, "segment.name", segment.name)
        paths = tuple(request.update_mask.paths)
        node = None
        if "filter" in paths and segment.HasField("filter"):
            node = read_filter(v, "segment.filter", segment.filter)
        v.raise_if_any()
        changes = rules.SegmentChanges(
            paths=paths,
            display_name=segment.display_name,
            description=segment.description,
            filter=node,
            provider_list=_list_id(segment),
        )
        view = await rules.update_segment(
            self._db, segment_id=segment_id, name=segment.name, changes=changes, now=self._clock()
        )
        return pb.UpdateSegmentResponse(segment=segment_message(view))

    async def delete(self, request: pb.DeleteSegmentRequest) -> pb.DeleteSegmentResponse:
        v = Violations()
        segment_id = parse_segment_name(v, "name", request.name)
        v.raise_if_any()
        await rules.delete_segment(self._db, segment_id=segment_id, name=request.name)
        return pb.DeleteSegmentResponse()

    async def list_contacts(
        self, request: pb.ListSegmentContactsRequest
    ) -> pb.ListSegmentContactsResponse:
        v = Violations()
        segment_id = parse_segment_name(v, "parent", request.parent)
        page = await rules.list_members(
            self._db,
            self._tokens,
            segment_id=segment_id if not v else None,
            parent=request.parent,
            page_size=request.page_size,
            page_token=request.page_token,
            violations=v,
        )
        return pb.ListSegmentContactsResponse(
            contacts=[contact_message(c) for c in page.contacts],
            next_page_token=page.next_page_token,
        )

    async def add(self, request: pb.AddToSegmentRequest) -> pb.AddToSegmentResponse:
        added = await self._change(request.segment, list(request.contacts), join=True)
        return pb.AddToSegmentResponse(added=added)

    async def remove(self, request: pb.RemoveFromSegmentRequest) -> pb.RemoveFromSegmentResponse:
        removed = await self._change(request.segment, list(request.contacts), join=False)
        return pb.RemoveFromSegmentResponse(removed=removed)

    async def _change(self, name: str, contacts: list[str], *, join: bool) -> int:
        v = Violations()
        segment_id = parse_segment_name(v, "segment", name)
        return await rules.change_members(
            self._db,
            segment_id=segment_id,
            name=name,
            contact_names=contacts,
            join=join,
            now=self._clock(),
            violations=v,
        )

    async def preview(self, request: pb.PreviewSegmentRequest) -> pb.PreviewSegmentResponse:
        v = Violations()
        node = None
        if request.HasField("filter"):
            node = read_filter(v, "filter", request.filter)
        else:
            v.add("filter", "REQUIRED", "give the filter to preview")
        v.raise_if_any()
        assert node is not None
        found = await rules.preview(
            self._db, node, sample_size=request.sample_size, now=self._clock()
        )
        return pb.PreviewSegmentResponse(
            contact_count=found.contact_count, sample=[contact_message(c) for c in found.sample]
        )


def _list_id(segment: segment_pb2.Segment) -> str | None:
    """The list the caller links the segment to (None: no list)."""
    return segment.provider_list.list_id if segment.HasField("provider_list") else None


def _list_message(link: ListLink | None) -> segment_pb2.ProviderList | None:
    if link is None:
        return None
    return segment_pb2.ProviderList(
        list_id=link.list_id,
        last_sync_time=timestamp(link.last_sync_at),
        pending_changes=link.pending_changes,
    )


def segment_message(view: SegmentView) -> segment_pb2.Segment:
    return segment_pb2.Segment(
        name=segment_name(view.id),
        display_name=view.display_name,
        description=view.description,
        kind=_KIND_ENUMS[view.kind],
        filter=None if view.filter is None else filter_message(view.filter),
        contact_count=view.contact_count,
        built_in=view.built_in,
        create_time=timestamp(view.created_at),
        update_time=timestamp(view.updated_at),
        evaluate_time=timestamp(view.evaluated_at),
        provider_list=_list_message(view.provider_list),
    )
