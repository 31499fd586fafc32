"""Typed errors of the DICOMweb layer, each with a one-line human message.

No error text ever carries a password, token, Authorization header or extra-header value:
messages are built from the status, a short sanitised body excerpt and a credential-free URL.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def excerpt(body: bytes | str, limit: int = 120) -> str:
    """A short single-line excerpt of a response body: control characters squeezed to spaces."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = _CONTROL.sub(" ", text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


class DicomWebError(Exception):
    """Base class: `.message` is one line of human text, `.status` the HTTP status if any."""

    outcome: str = "http-error"

    def __init__(
        self,
        message: str,
        status: int | None = None,
        url: str | None = None,
        *,
        outcome: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.url = url
        if outcome is not None:
            self.outcome = outcome
        self.retryable = retryable
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r})"


class Unreachable(DicomWebError):
    """The server could not be reached (connection refused, DNS failure, TLS failure)."""

    outcome = "network-error"


class AuthRefused(DicomWebError):
    """The server refused the credentials (HTTP 401 or 403)."""


class NotFound(DicomWebError):
    """HTTP 404: the study, series or instance is not on the server."""


class ServerError(DicomWebError):
    """Any other HTTP error status; the message has the status and a body excerpt."""


class RequestTimeout(DicomWebError):
    """The connection or the answer took longer than the configured timeout."""

    outcome = "timeout"


class MalformedAnswer(DicomWebError):
    """The answer could not be decoded: HTML, non-JSON, bad DICOM JSON, truncated multipart."""

    outcome = "decode-error"


class InvalidQuery(DicomWebError):
    """A query value the server cannot take; raised before anything is sent."""

    outcome = "decode-error"
