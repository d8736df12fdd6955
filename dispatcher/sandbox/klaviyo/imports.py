"""Profile bulk import jobs (POST /api/profile-bulk-import-jobs) and how they progress.

A job is queued for the first half of the processing time, processing for the second half
and complete after it (a processing time of 0 completes it at once); its profiles reach the
account when it completes. Profiles Klaviyo would not import are the job's import errors and
count as failed; the others complete. Klaviyo does not say how long a job is kept; the
sandbox states an expiry 7 days after creation."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

from dispatcher.sandbox.common.recording import iso

QUEUED, PROCESSING, COMPLETE = "queued", "processing", "complete"
DEFAULT_PROCESSING_S = 0.5
EXPIRES_AFTER_S = 7 * 86_400


@dataclass(frozen=True)
class ImportErrorItem:
    id: str
    pointer: str
    detail: str
    original_payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "import-error",
            "id": self.id,
            "attributes": {
                "code": "invalid",
                "title": "Invalid input.",
                "detail": self.detail,
                "source": {"pointer": self.pointer},
                "original_payload": self.original_payload,
            },
        }


@dataclass
class ImportJob:
    id: str
    created_s: float
    processing_s: float
    profiles: list[dict[str, Any]]  # attributes of the profiles that will be imported
    errors: list[ImportErrorItem]
    list_ids: list[str]

    def status(self, now: float) -> str:
        if now >= self.created_s + self.processing_s:
            return COMPLETE
        return PROCESSING if now >= self.created_s + self.processing_s / 2 else QUEUED

    def resource(self, now: float, base_url: str) -> dict[str, Any]:
        status = self.status(now)
        done = status == COMPLETE
        self_url = f"{base_url}/api/profile-bulk-import-jobs/{self.id}/"
        return {
            "type": "profile-bulk-import-job",
            "id": self.id,
            "attributes": {
                "status": status,
                "created_at": iso(self.created_s),
                "total_count": len(self.profiles) + len(self.errors),
                "completed_count": len(self.profiles) if done else 0,
                "failed_count": len(self.errors) if done else 0,
                "started_at": None if status == QUEUED else iso(self._started_s),
                "completed_at": iso(self.created_s + self.processing_s) if done else None,
                "expires_at": iso(self.created_s + EXPIRES_AFTER_S),
            },
            "relationships": {
                "lists": {
                    "data": [{"type": "list", "id": list_id} for list_id in self.list_ids],
                    "links": _links(self_url, "lists"),
                },
                "profiles": {"links": _links(self_url, "profiles")},
                "import-errors": {"links": _links(self_url, "import-errors")},
            },
            "links": {"self": self_url},
        }

    @property
    def _started_s(self) -> float:
        return self.created_s + self.processing_s / 2


def _links(self_url: str, name: str) -> dict[str, str]:
    return {"self": f"{self_url}relationships/{name}/", "related": f"{self_url}{name}/"}


class ImportJobs:
    def __init__(self, processing_s: float = DEFAULT_PROCESSING_S) -> None:
        if processing_s < 0:
            raise ValueError("processing_s must not be negative")
        self._processing_s = processing_s
        self._lock = threading.Lock()
        self._jobs: dict[str, ImportJob] = {}
        self._pending: list[ImportJob] = []  # not yet applied, oldest first

    def add(
        self,
        profiles: list[dict[str, Any]],
        errors: list[ImportErrorItem],
        list_ids: list[str],
        now: float,
    ) -> ImportJob:
        job = ImportJob(uuid.uuid4().hex, now, self._processing_s, profiles, errors, list_ids)
        with self._lock:
            self._jobs[job.id] = job
            self._pending.append(job)
        return job

    def get(self, job_id: str) -> ImportJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def take_completed(self, now: float) -> list[ImportJob]:
        """Jobs that completed since the last call, oldest first: their profiles are due."""
        with self._lock:
            due = [job for job in self._pending if job.status(now) == COMPLETE]
            self._pending = [job for job in self._pending if job.status(now) != COMPLETE]
        return due


def new_error_id() -> str:
    return uuid.uuid4().hex
