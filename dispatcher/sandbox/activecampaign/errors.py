"""ActiveCampaign's error answers, whose bodies vary by endpoint (shared/PROVIDERS-API.md,
"Errors, pagination and types"): `{"errors":[{title, detail, code, source}]}` for 422s,
`{"message": ...}` for many 403s and 404s, and a bare `{}` for many 400s."""

from __future__ import annotations

from typing import Any

from dispatcher.sandbox.common.windows import Refusal


class ApiError(Exception):
    """An error answer: status and the JSON body to send."""

    def __init__(self, status: int, body: Any, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def message(status: int, text: str) -> ApiError:
    return ApiError(status, {"message": text})


def bare(status: int = 400) -> ApiError:
    """The `{}` many of ActiveCampaign's 400s answer."""
    return ApiError(status, {})


def forbidden() -> ApiError:
    """A missing or wrong Api-Token."""
    return message(403, "Forbidden")


def no_result(entity: str, item_id: str, status: int = 404) -> ApiError:
    """`No Result found for <Entity> with id N`: 404 mostly, 403 for some entities."""
    return message(status, f"No Result found for {entity} with id {item_id}")


def unprocessable(code: str, title: str, pointer: str, detail: str = "") -> ApiError:
    """A 422 with one error; codes seen: duplicate, field_missing, field_invalid,
    related_missing."""
    error = {"title": title, "detail": detail, "code": code, "source": {"pointer": pointer}}
    return ApiError(422, {"errors": [error]})


def missing(pointer: str) -> ApiError:
    return unprocessable("field_missing", "Missing attribute", pointer, f"{pointer} is required")


def invalid(pointer: str, detail: str) -> ApiError:
    return unprocessable("field_invalid", "Invalid attribute", pointer, detail)


def related_missing(pointer: str, what: str) -> ApiError:
    return unprocessable("related_missing", f"{what} not found", pointer, f"No such {what}")


def duplicate(pointer: str, title: str) -> ApiError:
    return unprocessable("duplicate", title, pointer)


class Throttled(ApiError):
    """A rate-limit refusal: 429 with Retry-After (the body is not documented; the sandbox
    ASSUMES `{"message": "Too Many Requests"}`), or bulk import's 400 with its own body."""

    def __init__(self, refusal: Refusal, status: int = 429, body: Any = None) -> None:
        retry_after = str(refusal.retry_after)
        super().__init__(
            status,
            body if body is not None else {"message": "Too Many Requests"},
            headers={"Retry-After": retry_after} if status == 429 else {},
        )
        self.refusal = refusal
