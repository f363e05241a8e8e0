"""Wire format of platform protocol v1 (pure pydantic v2 models, no I/O).

These models are shared by the Docket client (activities/platform.py), the platform simulator
(platform_sim/) and the workflows. Every datetime is timezone-aware UTC; naive datetimes are
rejected at validation time. Unknown fields sent by a platform are ignored (forward
compatibility); unknown fields in what Docket sends are rejected by the simulator.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

PROTOCOL_VERSION = "v1"
IDEMPOTENCY_HEADER = "Idempotency-Key"
VANTAGE_HEADER = "X-Docket-Vantage"

_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
_REQUEST_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,199}$")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (UTC)")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]

Priority = Literal["normal", "urgent", "emergency"]
TicketState = Literal["received", "acknowledged", "info_requested", "decided", "withdrawn"]
Effect = Literal[
    "removed_globally",
    "restricted",
    "declined",
    "needs_more_info",
    "not_found",
    "already_removed",
]
NoticeKind = Literal["second_notice", "renotify", "withdrawal", "reinstatement", "info_provided"]


class _Sent(BaseModel):
    """Models Docket sends: strict about unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Received(BaseModel):
    """Models a platform sends: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class LegalBasis(_Sent):
    instrument: str = Field(min_length=1, description="e.g. 'Decree 147/2024/ND-CP'")
    article: str = Field(min_length=1, description="e.g. 'Art. 23(2)'")
    url: str = Field(min_length=1, description="URL to the text of the instrument")


class OrderItem(_Sent):
    item_id: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, description="the exact URL of the content")
    content_type: str = Field(min_length=1, description="e.g. 'post', 'video', 'account'")
    category: str = Field(min_length=1)
    reason: str = Field(min_length=1, description="per-item statement of reasons")


class OrderPayload(_Sent):
    """Body of ``POST /v1/requests``: one authority order (DSA Art. 9 fields)."""

    request_id: str = Field(description="the Docket workflow id; also the Idempotency-Key")
    authority: str = Field(min_length=1)
    reference: str = Field(min_length=1, description="the authority's own reference")
    legal_bases: list[LegalBasis] = Field(min_length=1)
    statement_of_reasons: str = Field(min_length=1)
    territorial_scope: list[str] = Field(
        min_length=1, description='ISO 3166-1 alpha-2 codes, or ["global"]'
    )
    redress: str = Field(min_length=1, description="redress options for platform and uploader")
    priority: Priority = "normal"
    sla_policy: str = Field(min_length=1)
    language: str = Field(min_length=2, description="BCP 47 tag, e.g. 'vi'")
    items: list[OrderItem] = Field(min_length=1)

    @field_validator("request_id")
    @classmethod
    def _request_id_shape(cls, value: str) -> str:
        if not _REQUEST_ID_RE.match(value):
            raise ValueError("request_id must match [a-z0-9][a-z0-9-]*")
        return value

    @field_validator("territorial_scope")
    @classmethod
    def _scope_shape(cls, value: list[str]) -> list[str]:
        if value == ["global"]:
            return value
        for code in value:
            if not _COUNTRY_RE.match(code):
                raise ValueError(f"territorial_scope: {code!r} is not an ISO alpha-2 code")
        if len(set(value)) != len(value):
            raise ValueError("territorial_scope: duplicate country codes")
        return value

    @field_validator("items")
    @classmethod
    def _unique_items(cls, value: list[OrderItem]) -> list[OrderItem]:
        ids = [item.item_id for item in value]
        if len(set(ids)) != len(ids):
            raise ValueError("items: item_id values must be unique")
        return value


class TicketResponse(_Received):
    """Answer to ``POST /v1/requests`` (201 first time, 200 on an idempotent repeat)."""

    ticket: str = Field(min_length=1)
    received_at: UtcDatetime


class PlatformItemEffect(_Received):
    item_id: str
    effect: Effect | None = Field(default=None, description="None while pending")
    restricted_in: list[str] = Field(default_factory=list)
    reason: str | None = None
    effect_at: UtcDatetime | None = None
    platform_ref: str | None = None
    uploader_notified: bool = False
    reinstated_at: UtcDatetime | None = None


class PlatformStatus(_Received):
    """Answer to ``GET /v1/requests/{ticket}``."""

    ticket: str
    status: TicketState
    acknowledged_at: UtcDatetime | None = None
    info_request: str | None = None
    items: list[PlatformItemEffect] = Field(default_factory=list)


class Notice(_Sent):
    """Body of ``POST /v1/requests/{ticket}/notices``.

    ``notice_id`` identifies the notice across retries (sent as its Idempotency-Key); when
    omitted, the client derives one that is stable across retries of the same activity.
    ``items`` lists item ids the notice concerns; empty means the whole request.
    """

    kind: NoticeKind
    request_id: str
    message: str = ""
    items: list[str] = Field(default_factory=list)
    notice_id: str | None = Field(default=None, max_length=200)


class NoticeReceipt(_Received):
    """Answer to a notice (202 first time, 200 on an idempotent repeat)."""

    ticket: str
    notice_id: str
    kind: NoticeKind
    received_at: UtcDatetime


class ErrorBody(_Received):
    """Every 4xx/5xx answer of the simulator carries ``{"error": "..."}``."""

    error: str


def utc_now() -> datetime:
    """Current time as an aware UTC datetime (for callers outside workflow code)."""
    return datetime.now(UTC)
