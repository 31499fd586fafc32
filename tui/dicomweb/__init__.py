"""DICOMweb layer: HTTP client, query strings, multipart parser, models, request log.

No Textual, no UI state. The names most callers need are re-exported here.
"""

from .client import FRAMES_ACCEPT, DicomWebClient, FramePart, ServerInfo
from .errors import (
    AuthRefused,
    DicomWebError,
    InvalidQuery,
    MalformedAnswer,
    NotFound,
    RequestTimeout,
    ServerError,
    Unreachable,
)
from .model import Instance, Patient, PersonName, Series, Study, group_patients
from .query import StudyQuery
from .requestlog import JsonLinesSink, RequestLog, RequestRecord, StartedRequest

__all__ = [
    "FRAMES_ACCEPT",
    "AuthRefused",
    "DicomWebClient",
    "DicomWebError",
    "FramePart",
    "Instance",
    "InvalidQuery",
    "JsonLinesSink",
    "MalformedAnswer",
    "NotFound",
    "Patient",
    "PersonName",
    "RequestLog",
    "RequestRecord",
    "RequestTimeout",
    "Series",
    "ServerError",
    "ServerInfo",
    "StartedRequest",
    "Study",
    "StudyQuery",
    "Unreachable",
    "group_patients",
]
