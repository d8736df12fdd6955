"""Build the gRPC server; `main` runs it. Kept apart so tests can bind port 0."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from marketing.v1 import service_pb2
from marketing_runtime.clock import Clock, utc_now
from marketing_runtime.connection import Bus

from service.api import request_decoding
from service.api.auth import AuthInterceptor, CallerFile
from service.api.servicer import MarketingServicer
from service.api.tls import server_credentials
from service.campaigns.audience import Cap
from service.common.pagination import PageTokens
from service.events.event_log import PostgresEventSink
from service.events.fast_path import BusEventSink
from service.events.rules import EventSink
from service.preferences.serving import preference_links
from service.reconcile.provider import BusPersonReader
from service.reports.rules import report_settings
from service.settings import ServiceSettings
from service.storage.database import Database

SERVICE = service_pb2.DESCRIPTOR.services_by_name["MarketingService"]
SERVICE_NAME = SERVICE.full_name


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer

    async def stop(self, grace_s: float) -> None:
        """Report NOT_SERVING, let in-flight RPCs finish, then close connections."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)


async def create_server(
    settings: ServiceSettings,
    db: Database,
    *,
    callers: CallerFile | None,
    bus: Bus | None = None,
    clock: Clock = utc_now,
) -> RunningServer:
    """Start serving on `settings.grpc_address` (port 0 picks a free port).
    With a bus, events take the JetStream fast path; without, PostgreSQL.
    `callers` (service.api.auth.load_callers) are the only ones let in; None
    lets everyone in, so every caller of this function has to say which."""
    limit = settings.max_message_bytes
    server = grpc.aio.server(
        interceptors=[] if callers is None else [AuthInterceptor(callers)],
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
        ],
    )
    postgres_sink = PostgresEventSink(db)
    sink: EventSink = postgres_sink if bus is None else BusEventSink(bus, postgres_sink)
    servicer = MarketingServicer(
        db,
        sink,
        PageTokens(settings.page_token_key.get_secret_value().encode()),
        clock=clock,
        max_clock_skew=timedelta(seconds=settings.max_clock_skew_s),
        person_reader=BusPersonReader(bus, timeout_s=settings.provider_read_timeout_s),
        preference_links=preference_links(settings),
        frequency_cap=Cap(
            settings.frequency_cap_messages, timedelta(days=settings.frequency_cap_days)
        ),
        reports=report_settings(settings.cost_per_message),
        campaign_lead=timedelta(seconds=settings.campaign_upload_lead_s),
    )
    # Not the generated add_..._to_server: undecodable requests must become INVALID_ARGUMENT.
    request_decoding.register(server, servicer, SERVICE)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [
            SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    credentials = server_credentials(settings)
    if credentials is None:
        port = server.add_insecure_port(settings.grpc_address)
    else:
        port = server.add_secure_port(settings.grpc_address, credentials)
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, port, health_servicer)
