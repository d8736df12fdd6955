"""Consent traffic from several concurrent clients, as callers who retry: each
client owns its contacts and sends one operation at a time per contact,
repeating it (with the same request_id) until it is acknowledged. So the last
acknowledged operation of each contact is well defined, and so is the consent
state it must leave behind, here and at the provider."""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.builders import upsert
from tests.consent_model import ConsentState, Operation, Record, Subscribe, Unsubscribe, send
from tests.harness import ServiceHarness, unique_email

# The operations the clients choose from, by name (a sorted choice keeps a seed's run the same).
OPERATIONS: dict[str, Operation] = {
    "SubscribeNewsletter": Subscribe(),
    "Unsubscribe": Unsubscribe(),
    "RecordConsent granted": Record("EMAIL", granted=True),
    "RecordConsent withdrawn": Record("EMAIL", granted=False),
}


def retry_info_and_reason(error: grpc.RpcError) -> tuple[bool, str]:
    status = rpc_status.from_call(error)
    has_retry, reason = False, ""
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            has_retry = True
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
    return has_retry, reason


@dataclass
class ConsentTraffic:
    harness: ServiceHarness
    clients: int = 4
    contacts_per_client: int = 5
    seed: int = 0
    # contact email -> the state its acknowledged operations leave; its name
    expected: dict[str, ConsentState] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    codes: Counter[str] = field(default_factory=Counter)
    # Errors other than OK / UNAVAILABLE-with-RetryInfo-and-ErrorInfo, as seen.
    wrong: list[str] = field(default_factory=list)
    acknowledged: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> ConsentTraffic:
        for client in range(self.clients):
            emails = [unique_email(f"pgfault{client}") for _ in range(self.contacts_per_client)]
            for email in emails:
                self.names[email] = self.harness.stub.UpsertContact(upsert(email)).contact.name
                self.expected[email] = ConsentState()
            thread = threading.Thread(
                target=self._client, args=(emails, random.Random(self.seed + client)), daemon=True
            )
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)
            assert not thread.is_alive(), "a client did not finish its operation"

    def seen(self, code: str) -> int:
        with self._lock:
            return self.codes[code]

    def acknowledged_count(self) -> int:
        with self._lock:
            return self.acknowledged

    def _client(self, emails: list[str], rng: random.Random) -> None:
        while not self._stop.is_set():
            email = rng.choice(emails)
            operation = rng.choice(sorted(OPERATIONS))
            self._until_acknowledged(operation, email)
            with self._lock:
                self.expected[email] = OPERATIONS[operation].apply(self.expected[email])
                self.acknowledged += 1

    def _until_acknowledged(self, operation: str, email: str) -> None:
        request_id = str(uuid.uuid4())
        while True:
            try:
                op = OPERATIONS[operation]
                send(self.harness.stub, op, email, self.names[email], request_id)
            except grpc.RpcError as err:
                self._note_error(operation, err)
                self._stop.wait(0.05)  # RetryInfo says 1 s; shorter keeps the test brief
                continue
            with self._lock:
                self.codes["OK"] += 1
            return

    def _note_error(self, operation: str, err: grpc.RpcError) -> None:
        code = err.code().name
        has_retry, reason = retry_info_and_reason(err)
        with self._lock:
            self.codes[code] += 1
            if code != "UNAVAILABLE" or not has_retry or reason != "POSTGRESQL_UNAVAILABLE":
                self.wrong.append(f"{operation}: {code} {reason} {err.details()}")
