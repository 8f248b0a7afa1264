"""Errors a caller can act on: the service could not answer, or it refused the request."""

from __future__ import annotations

from tml_client.types import FieldError


class TMLError(Exception):
    """Base class of every error the client raises."""


class ServiceUnavailable(TMLError):
    """No answer: connection refused/reset, timeout, or a 5xx after the retries.

    A bot should treat this as "the service cannot judge now" (fail closed or open)."""


class ServiceError(TMLError):
    """The service answered with an error status (4xx other than 422)."""

    def __init__(self, status: int, detail: object) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class ValidationFailed(ServiceError):
    """422: the request broke a rule. ``errors`` names each field and the reason."""

    def __init__(self, status: int, detail: object, errors: list[FieldError]) -> None:
        super().__init__(status, detail)
        self.errors = errors
        first = errors[0] if errors else None
        self.field = first.field if first else None
        self.reason = first.reason if first else str(detail)
        self.args = (f"HTTP {status}: {self.field}: {self.reason}" if first
                     else f"HTTP {status}: {detail}",)
