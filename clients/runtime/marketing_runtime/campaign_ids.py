"""The Nats-Msg-Ids of a campaign's steps, for both processes: the service publishes
pages and sends under them, the dispatcher their results. A step tried again after a
retryable failure has ids of its own (`:retry<n>`): JetStream would drop it as a copy."""

from __future__ import annotations

_PREFIX = "campaign"


def part_key(campaign_id: str, part: int) -> str:
    """What every id of one part begins with: `campaign:<id>:<part>`."""
    return f"{_PREFIX}:{campaign_id}:{part}"


def parse_part_key(key: str) -> tuple[str, int]:
    """(campaign id, part) of a `part_key`; part 0 when it names none."""
    _, _, rest = key.partition(":")
    campaign_id, _, part = rest.rpartition(":")
    return campaign_id, int(part) if part.isdigit() else 0


def page_id(key: str, sequence: int, attempt: int = 0) -> str:
    return f"{key}:{sequence}{_retry(attempt)}"


def send_id(key: str, attempt: int = 0) -> str:
    return f"{key}:send{_retry(attempt)}"


def result_id(step_id: str) -> str:
    """The id of a step's result, from the step's own."""
    return f"{step_id}:result"


def _retry(attempt: int) -> str:
    return f":retry{attempt}" if attempt else ""
