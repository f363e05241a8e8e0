"""Wire format of platform protocol v1 (pure pydantic v2 models, no I/O).

These models are shared by the Docket client (activities/platform.py), the platform simulator
(platform_sim/), the conformance kit (platform_check/) and the workflows. The published
contract (docs/platform-protocol.openapi.json) is generated from them by
``docket.platform_openapi``, and a test fails when the two differ.

**Where the contract is enforced.** Everything the contract says (lengths, the text policy,
RFC 3339 timestamps, effect-dependent fields) is checked when JSON crosses the wire: validate
with ``context=WIRE`` (:func:`parse_wire`, :func:`check_wire`). Built in Python or read back
from workflow history, the models keep their historic, more lenient checks, so a history
recorded before a rule was added still replays, and workflow code never fails on a rule that
only the wire enforces (the client checks its own requests with ``check_wire`` before sending).

Unknown fields sent by a platform are ignored (forward compatibility); unknown fields in what
Docket sends are refused by the platform (``additionalProperties: false``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    RootModel,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from docket.text import check_text

PROTOCOL_VERSION = "v1"
#: Version of the published contract document (semantic versioning: a minor version adds
#: optional behaviour or tightens what was undefined; v2 would change the wire incompatibly).
CONTRACT_VERSION = "1.1.0"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: The simulator's stand-in for a real vantage point (see docs/platform-protocol.md,
#: "Vantage points"): never sent through a real (proxy or direct) vantage.
VANTAGE_HEADER = "X-Docket-Vantage"

#: Validation context under which the models enforce the whole contract.
WIRE: Mapping[str, Any] = {"wire": True}

M = TypeVar("M", bound=BaseModel)

_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
REQUEST_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,199}$"
ITEM_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
TICKET_PATTERN = r"^[A-Za-z0-9._~-]{1,100}$"
NOTICE_ID_PATTERN = r"^[A-Za-z0-9._~-]{1,200}$"
CATEGORY_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
POLICY_PATTERN = r"^[A-Z0-9][A-Z0-9-]{1,40}$"
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"
#: RFC 3339 date-time with a zone: ``Z`` or an offset such as ``+07:00``; zone-less is refused.
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]"
    r":[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_TIMESTAMP_RE = re.compile(TIMESTAMP_PATTERN)
#: At least three characters once surrounding whitespace is trimmed.
_THREE_VISIBLE = r"^\s*\S[\s\S]+\S\s*$"
_ONE_VISIBLE = r"\S"

# Characters the contract refuses in free text: Docket's text policy (docket.text), as one
# JSON Schema pattern. BMP ranges are \u escapes (the same in ECMA-262 and Python regexes);
# the two astral ranges are literal characters (the JSON file carries them as \ud8xx\udcxx
# escapes). A test checks every code point against docket.text.find_unsafe.
_UNSAFE_BMP = (
    (0x0000, 0x001F),
    (0x007F, 0x009F),
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180E, 0x180E),
    (0x200B, 0x200B),
    (0x2028, 0x2029),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x2069),
    (0x206A, 0x206F),
    (0x3164, 0x3164),
    (0xD800, 0xDFFF),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF9, 0xFFFB),
)
_UNSAFE_ASTRAL = ((0x1D173, 0x1D17A), (0xE0000, 0xE007F))


def _class(ranges: tuple[tuple[int, int], ...], *, keep: tuple[int, ...] = ()) -> str:
    parts: list[str] = []
    for lo, hi in ranges:
        # split a range around the kept code points (tab and line feed in multi-line text)
        start = lo
        for cp in sorted(k for k in keep if lo <= k <= hi):
            if start <= cp - 1:
                parts.append(_span(start, cp - 1))
            start = cp + 1
        if start <= hi:
            parts.append(_span(start, hi))
    return "".join(parts)


def _span(lo: int, hi: int) -> str:
    def one(cp: int) -> str:
        return f"\\u{cp:04x}" if cp <= 0xFFFF else chr(cp)

    return one(lo) if lo == hi else f"{one(lo)}-{one(hi)}"


#: Search pattern matching a character refused in single-line text.
UNSAFE_LINE_PATTERN = "[" + _class(_UNSAFE_BMP + _UNSAFE_ASTRAL) + "]"
#: Search pattern matching a character refused in multi-line text (tab and LF allowed).
UNSAFE_TEXT_PATTERN = "[" + _class(_UNSAFE_BMP + _UNSAFE_ASTRAL, keep=(0x09, 0x0A)) + "]"


def _on_wire(info: ValidationInfo) -> bool:
    context = info.context
    return isinstance(context, Mapping) and context.get("wire") is True


def _text_checker(
    min_length: int, max_length: int, *, multiline: bool, trimmed_min: int
) -> AfterValidator:
    def check(value: str, info: ValidationInfo) -> str:
        if not _on_wire(info):
            return value
        if len(value) > max_length:
            raise ValueError(f"at most {max_length:,} characters (got {len(value):,})")
        if len(value) < min_length or len(value.strip()) < trimmed_min:
            raise ValueError(
                f"at least {trimmed_min} characters besides surrounding whitespace"
                if trimmed_min > 1
                else "must not be empty or only whitespace"
            )
        check_text(value, multiline=multiline)
        return value

    return AfterValidator(check)


def _text_schema(
    min_length: int,
    max_length: int,
    *,
    multiline: bool,
    trimmed_min: int,
    description: str,
    pattern: str | None = None,
) -> WithJsonSchema:
    schema: dict[str, Any] = {
        "type": "string",
        "minLength": min_length,
        "maxLength": max_length,
        "not": {"pattern": UNSAFE_TEXT_PATTERN if multiline else UNSAFE_LINE_PATTERN},
        "description": description,
    }
    if pattern is not None:
        schema["pattern"] = pattern
    elif trimmed_min >= 3:
        schema["pattern"] = _THREE_VISIBLE
    elif trimmed_min >= 1:
        schema["pattern"] = _ONE_VISIBLE
    return WithJsonSchema(schema)


_LINE_RULE = "one line; no control, bidi-override or invisible format characters"
_TEXT_RULE = "tabs and line feeds allowed; no other control, bidi-override or invisible characters"

Line = Annotated[
    str,
    _text_checker(1, 500, multiline=False, trimmed_min=1),
    _text_schema(
        1, 500, multiline=False, trimmed_min=1, description=f"1-500 characters, {_LINE_RULE}"
    ),
]
Reason = Annotated[
    str,
    _text_checker(3, 4000, multiline=True, trimmed_min=3),
    _text_schema(
        3,
        4000,
        multiline=True,
        trimmed_min=3,
        description=f"3-4,000 characters (not counting surrounding whitespace), {_TEXT_RULE}",
    ),
]
Text = Annotated[
    str,
    _text_checker(1, 20_000, multiline=True, trimmed_min=1),
    _text_schema(
        1, 20_000, multiline=True, trimmed_min=1, description=f"1-20,000 characters, {_TEXT_RULE}"
    ),
]
Statement = Annotated[
    str,
    _text_checker(20, 20_000, multiline=True, trimmed_min=20),
    _text_schema(
        20,
        20_000,
        multiline=True,
        trimmed_min=20,
        pattern=r"^\s*\S[\s\S]{18,}\S\s*$",
        description=f"20-20,000 characters (not counting surrounding whitespace), {_TEXT_RULE}",
    ),
]
Message = Annotated[
    str,
    _text_checker(0, 20_000, multiline=True, trimmed_min=0),
    _text_schema(
        0, 20_000, multiline=True, trimmed_min=0, description=f"0-20,000 characters, {_TEXT_RULE}"
    ),
]
Reference = Annotated[
    str,
    _text_checker(1, 100, multiline=False, trimmed_min=1),
    _text_schema(
        1, 100, multiline=False, trimmed_min=1, description=f"1-100 characters, {_LINE_RULE}"
    ),
]
Marker = Annotated[
    str,
    _text_checker(3, 200, multiline=False, trimmed_min=3),
    _text_schema(
        3,
        200,
        multiline=False,
        trimmed_min=3,
        description="3-200 characters of page text, matched case-insensitively once whitespace "
        "is collapsed; " + _LINE_RULE,
    ),
]


def _check_url(value: str, info: ValidationInfo) -> str:
    if not _on_wire(info):
        return value
    if len(value) > 2048:
        raise ValueError("URL is longer than 2,048 characters")
    if not re.match(r"^https?://[^\s/?#]+[^\s]*$", value):
        raise ValueError("must be an http:// or https:// URL with a host and no whitespace")
    check_text(value)
    return value


Url = Annotated[
    str,
    AfterValidator(_check_url),
    WithJsonSchema(
        {
            "type": "string",
            "format": "uri",
            "maxLength": 2048,
            "pattern": r"^https?://[^\s/?#]+[^\s]*$",
            "not": {"pattern": UNSAFE_LINE_PATTERN},
            "description": "an absolute http(s) URL, at most 2,048 characters, no whitespace",
        }
    ),
]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (UTC)")
    return value.astimezone(UTC)


def _rfc3339(value: Any, info: ValidationInfo) -> Any:
    if _on_wire(info) and not (isinstance(value, str) and _TIMESTAMP_RE.match(value)):
        raise ValueError(
            "must be an RFC 3339 date-time with a zone, e.g. 2026-11-29T08:38:11Z or "
            "2026-11-29T15:38:11+07:00 (a time without Z or an offset is refused)"
        )
    return value


#: An aware datetime, converted to UTC (internal models; lenient: any aware datetime).
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]

#: A timestamp on the wire: RFC 3339 with ``Z`` or an offset; Docket converts it to UTC.
Timestamp = Annotated[
    datetime,
    BeforeValidator(_rfc3339),
    AfterValidator(_utc),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": TIMESTAMP_PATTERN,
            "description": "RFC 3339 date-time with a zone: 'Z' (UTC) or an offset such as "
            "'+07:00'; a time without a zone is refused. Docket converts to UTC.",
            "examples": ["2026-11-29T08:38:11.626839Z", "2026-11-29T15:38:11+07:00"],
        }
    ),
]

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
#: Effects that claim the content is gone (globally or in the listed countries).
GONE_EFFECTS: frozenset[str] = frozenset({"removed_globally", "restricted", "already_removed"})
ContentType = Literal["post", "account", "page", "group", "video", "channel", "comment", "image"]
NoticeKind = Literal["second_notice", "renotify", "withdrawal", "reinstatement", "info_provided"]


class _Sent(BaseModel):
    """Models Docket sends: strict about unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Received(BaseModel):
    """Models a platform sends: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def parse_wire(model: type[M], data: bytes | str) -> M:
    """Parse JSON received over the wire, enforcing the whole contract."""
    return model.model_validate_json(data, context=dict(WIRE))


def check_wire(model: type[M], data: Any) -> M:
    """Validate a Python value (e.g. ``model_dump(mode="json")``) against the whole contract."""
    return model.model_validate(data, context=dict(WIRE))


class LegalBasis(_Sent):
    instrument: Line = Field(min_length=1, description="e.g. 'Decree 147/2024/ND-CP'")
    article: Line = Field(min_length=1, description="e.g. 'Art. 23(2)'")
    url: Url = Field(min_length=1, description="URL to the text of the instrument")


class OrderItem(_Sent):
    item_id: str = Field(
        pattern=ITEM_ID_PATTERN, description="unique in the order; lowercase letters, digits, '-'"
    )
    url: Url = Field(min_length=1, description="the exact URL of the content")
    content_type: ContentType
    category: str = Field(
        pattern=CATEGORY_PATTERN, description="Docket's category id, e.g. 'impersonation'"
    )
    reason: Reason = Field(min_length=1, description="per-item statement of reasons")


class OrderPayload(_Sent):
    """Body of ``POST /v1/requests``: one authority order (DSA Art. 9 fields)."""

    request_id: str = Field(
        pattern=REQUEST_ID_PATTERN,
        description="the Docket request id; the Idempotency-Key header must equal it",
    )
    authority: Line = Field(min_length=1, description="the issuing authority's name")
    reference: Reference = Field(min_length=1, description="the authority's own reference")
    legal_bases: list[LegalBasis] = Field(min_length=1)
    statement_of_reasons: Statement = Field(min_length=1)
    territorial_scope: list[str] = Field(
        min_length=1,
        description='ISO 3166-1 alpha-2 codes (unique), or exactly ["global"]',
        json_schema_extra={
            "anyOf": [
                {
                    "items": {"type": "string", "pattern": COUNTRY_PATTERN},
                    "uniqueItems": True,
                    "maxItems": 250,
                },
                {"items": {"const": "global"}, "maxItems": 1},
            ]
        },
    )
    redress: Text = Field(min_length=1, description="redress options for platform and uploader")
    priority: Priority = Field(
        default="normal", description="'urgent' is reserved: Docket sends normal or emergency"
    )
    sla_policy: str = Field(pattern=POLICY_PATTERN, description="the SLA policy Docket applies")
    language: str = Field(pattern=LANGUAGE_PATTERN, description="BCP 47 tag, e.g. 'vi'")
    items: list[OrderItem] = Field(min_length=1, max_length=500)

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

    model_config = ConfigDict(json_schema_extra={"required": ["ticket", "received_at"]})

    ticket: str = Field(
        min_length=1,
        description="the platform's id for the order: 1-100 of [A-Za-z0-9._~-]",
        json_schema_extra={"pattern": TICKET_PATTERN, "maxLength": 100},
    )
    received_at: Timestamp

    @field_validator("ticket")
    @classmethod
    def _ticket_shape(cls, value: str, info: ValidationInfo) -> str:
        if _on_wire(info) and not re.match(TICKET_PATTERN, value):
            raise ValueError("must be 1-100 characters of [A-Za-z0-9._~-]")
        return value


def _effect_rules() -> list[JsonValue]:
    def when(effect: str, then: dict[str, JsonValue]) -> dict[str, JsonValue]:
        return {
            "if": {"properties": {"effect": {"const": effect}}, "required": ["effect"]},
            "then": then,
        }

    return [
        when("declined", {"required": ["reason"], "properties": {"reason": {"type": "string"}}}),
        when(
            "restricted",
            {"required": ["restricted_in"], "properties": {"restricted_in": {"minItems": 1}}},
        ),
        when(
            "needs_more_info",
            {"required": ["question"], "properties": {"question": {"type": "string"}}},
        ),
        {
            "if": {
                "not": {"properties": {"effect": {"const": "restricted"}}, "required": ["effect"]}
            },
            "then": {"properties": {"restricted_in": {"maxItems": 0}}},
        },
    ]


class PlatformItemEffect(_Received):
    """One item of ``GET /v1/requests/{ticket}``: the platform's decision on it, or pending."""

    model_config = ConfigDict(
        json_schema_extra={"required": ["item_id", "effect"], "allOf": _effect_rules()}
    )

    item_id: str = Field(
        description="an item_id of the order", json_schema_extra={"pattern": ITEM_ID_PATTERN}
    )
    effect: Effect | None = Field(description="null while pending")
    restricted_in: list[str] = Field(
        default_factory=list,
        description="countries where the item is restricted: required (non-empty) for "
        "'restricted', empty otherwise",
        json_schema_extra={
            "items": {"type": "string", "pattern": COUNTRY_PATTERN},
            "uniqueItems": True,
            "maxItems": 250,
        },
    )
    reason: Reason | None = Field(
        default=None, description="the platform's reasons; required for 'declined'"
    )
    question: Text | None = Field(
        default=None,
        description="what the platform needs to know; required for 'needs_more_info' (Docket "
        "puts it to the authority like a request-level info_request)",
    )
    effect_at: Timestamp | None = None
    platform_ref: Line | None = Field(
        default=None, description="the platform's own reference of the decision"
    )
    uploader_notified: bool = Field(default=False, strict=True)
    reinstated_at: Timestamp | None = Field(
        default=None, description="set when the item was reinstated after a reinstatement notice"
    )

    @field_validator("item_id")
    @classmethod
    def _item_id_shape(cls, value: str, info: ValidationInfo) -> str:
        if _on_wire(info) and not re.match(ITEM_ID_PATTERN, value):
            raise ValueError("must be an item_id of the order: [a-z0-9][a-z0-9-]{0,39}")
        return value

    @field_validator("restricted_in")
    @classmethod
    def _countries(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if not _on_wire(info):
            return value
        for index, code in enumerate(value):
            if not _COUNTRY_RE.match(code):
                raise ValueError(f"[{index}]: {code[:20]!r} is not an ISO 3166-1 alpha-2 code")
        if len(set(value)) != len(value):
            raise ValueError("a country is listed twice")
        return value

    @model_validator(mode="after")
    def _effect_fields(self, info: ValidationInfo) -> PlatformItemEffect:
        if not _on_wire(info):
            return self
        if self.effect == "declined" and self.reason is None:
            raise ValueError("reason: required when effect is 'declined' (state the reasons)")
        if self.effect == "restricted" and not self.restricted_in:
            raise ValueError("restricted_in: name the countries when effect is 'restricted'")
        if self.effect != "restricted" and self.restricted_in:
            raise ValueError("restricted_in: must be empty unless effect is 'restricted'")
        if self.effect == "needs_more_info" and self.question is None:
            raise ValueError("question: required when effect is 'needs_more_info'")
        return self


class PlatformStatus(_Received):
    """Answer to ``GET /v1/requests/{ticket}``."""

    model_config = ConfigDict(
        json_schema_extra={
            "required": ["ticket", "status", "items"],
            "allOf": [
                {
                    "if": {"properties": {"status": {"const": "info_requested"}}},
                    "then": {
                        "required": ["info_request"],
                        "properties": {"info_request": {"type": "string"}},
                    },
                }
            ],
        }
    )

    ticket: str
    status: TicketState
    acknowledged_at: Timestamp | None = Field(
        default=None, description="when the platform acknowledged the order; null before"
    )
    info_request: Text | None = Field(
        default=None, description="the platform's question; required when status is info_requested"
    )
    items: list[PlatformItemEffect] = Field(
        default_factory=list,
        description="one entry per item of the order",
        json_schema_extra={"maxItems": 500},
    )

    @model_validator(mode="after")
    def _info_request(self, info: ValidationInfo) -> PlatformStatus:
        if _on_wire(info) and self.status == "info_requested" and self.info_request is None:
            raise ValueError("info_request: required when status is 'info_requested'")
        return self


class Notice(_Sent):
    """Body of ``POST /v1/requests/{ticket}/notices``.

    ``notice_id`` identifies the notice across retries (sent as its Idempotency-Key); when
    omitted, the client derives one that is stable across retries of the same activity.
    ``items`` lists item ids the notice concerns; empty means the whole request.
    """

    kind: NoticeKind
    request_id: str = Field(description="the order's request_id")
    message: Message = ""
    items: list[str] = Field(
        default_factory=list,
        description="item ids the notice concerns; empty means the whole order",
        json_schema_extra={
            "items": {"type": "string", "pattern": ITEM_ID_PATTERN},
            "uniqueItems": True,
            "maxItems": 500,
        },
    )
    notice_id: str | None = Field(
        default=None,
        max_length=200,
        description="identifies the notice; equal to its Idempotency-Key (Docket always sets it)",
        json_schema_extra={"pattern": NOTICE_ID_PATTERN},
    )

    @model_validator(mode="after")
    def _wire_shape(self, info: ValidationInfo) -> Notice:
        if not _on_wire(info):
            return self
        if not re.match(REQUEST_ID_PATTERN, self.request_id):
            raise ValueError("request_id: must match [a-z0-9][a-z0-9-]*")
        for index, item in enumerate(self.items):
            if not re.match(ITEM_ID_PATTERN, item):
                raise ValueError(f"items[{index}]: not an item id")
        if len(set(self.items)) != len(self.items):
            raise ValueError("items: an item is listed twice")
        if self.notice_id is not None and not re.match(NOTICE_ID_PATTERN, self.notice_id):
            raise ValueError("notice_id: must be 1-200 characters of [A-Za-z0-9._~-]")
        return self


class NoticeReceipt(_Received):
    """Answer to a notice (202 first time, 200 on an idempotent repeat)."""

    model_config = ConfigDict(
        json_schema_extra={"required": ["ticket", "notice_id", "kind", "received_at"]}
    )

    ticket: str
    notice_id: str
    kind: NoticeKind
    received_at: Timestamp


class ErrorBody(_Received):
    """Every 4xx/5xx answer carries ``{"error": "..."}`` (a human-readable message)."""

    error: str = Field(
        description="what is wrong, for a person: e.g. 'invalid order: items.0.reason: ...'",
        json_schema_extra={"minLength": 1, "maxLength": 2000},
    )


class MarkerList(_Received):
    """Answer to ``GET /v1/markers``: how the platform's pages say what happened to content.

    The operator reviews these and pins them (with their version) in Docket's reference data;
    Docket never fetches them at run time (a platform cannot change how its own compliance is
    judged). See docs/platforms.md.
    """

    model_config = ConfigDict(json_schema_extra={"required": ["version"]})

    version: str = Field(
        description="changes whenever a list changes; recorded with every observation",
        json_schema_extra={"pattern": r"^[A-Za-z0-9._-]{1,64}$"},
    )
    removed: list[Marker] = Field(default_factory=list, json_schema_extra={"maxItems": 50})
    geo_restricted: list[Marker] = Field(default_factory=list, json_schema_extra={"maxItems": 50})
    login_wall: list[Marker] = Field(default_factory=list, json_schema_extra={"maxItems": 50})

    @field_validator("version")
    @classmethod
    def _version_shape(cls, value: str, info: ValidationInfo) -> str:
        if _on_wire(info) and not re.match(r"^[A-Za-z0-9._-]{1,64}$", value):
            raise ValueError("must be 1-64 characters of [A-Za-z0-9._-]")
        return value


# --- conformance hooks (test mode only; see docs/platform-protocol.md) ---------------------------

RemovalView = Literal["marker", "404", "410", "451", "login"]


class ConformanceInfo(_Received):
    """Answer to ``GET /v1/conformance``: the platform runs in test mode with the hooks."""

    model_config = ConfigDict(json_schema_extra={"required": ["contract_version"]})

    contract_version: str = Field(description="the contract version the platform implements")
    vantage_header: bool = Field(
        default=False,
        description="true if test content honours the X-Docket-Vantage stand-in header",
    )


class ConformanceContentRequest(_Sent):
    """Body of ``POST /v1/conformance/content``: create a test content page (available)."""

    name: str = Field(
        default="content",
        description="a label for the page (letters, digits, '-')",
        pattern=r"^[a-z0-9][a-z0-9-]{0,39}$",
    )


class ConformanceContent(_Received):
    """Answer to ``POST /v1/conformance/content``."""

    model_config = ConfigDict(json_schema_extra={"required": ["url"]})

    url: str = Field(description="the page's public URL; probe it as an anonymous visitor")


# v1 signatures do not cover the path: two identical action bodies signed in the same second
# would share a signature (a replay). A unique action_id keeps every action's signature unique.
ActionId = Annotated[
    Annotated[str, Field(pattern=NOTICE_ID_PATTERN)] | None,
    Field(description="unique per action (the kit sets it): makes the signed body unique"),
]


class AcknowledgeAction(_Sent):
    action: Literal["acknowledge"]
    action_id: ActionId = None


class RequestInfoAction(_Sent):
    action: Literal["request_info"]
    action_id: ActionId = None
    question: Text = Field(min_length=1)


class DecideAction(_Sent):
    """Decide one item as the platform's staff would; the content page changes accordingly."""

    action: Literal["decide"]
    action_id: ActionId = None
    item_id: str = Field(pattern=ITEM_ID_PATTERN)
    effect: Effect
    restricted_in: list[Annotated[str, Field(pattern=COUNTRY_PATTERN)]] = Field(
        default_factory=list
    )
    reason: Reason | None = None
    question: Text | None = None
    view: RemovalView = Field(
        default="marker",
        description="how the removed page answers: 200 with the removed marker, 404, 410, "
        "451 (Link rel=blocked-by), or a redirect to a login wall",
    )


class ReinstateAction(_Sent):
    action: Literal["reinstate"]
    action_id: ActionId = None
    item_id: str = Field(pattern=ITEM_ID_PATTERN)


class ConformanceAction(
    RootModel[
        Annotated[
            AcknowledgeAction | RequestInfoAction | DecideAction | ReinstateAction,
            Field(discriminator="action"),
        ]
    ]
):
    """Body of ``POST /v1/conformance/requests/{ticket}/actions``."""

    model_config = ConfigDict(frozen=True)


# --- what the activities return to the workflow (not on the wire) -----------------------------

#: How an answer was authenticated: "hmac-sha256" (a valid response signature) or None.
Authenticated = Literal["hmac-sha256"] | None


class MalformedItem(BaseModel):
    """One problem with one item of a poll answer: the item is left out, the others kept."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    index: int = Field(description="position of the item in the answer's items array")
    item_id: str | None = Field(
        description="the item's id if it is a well-formed item id, else None (see index)"
    )
    path: str = Field(description="where the problem is, e.g. 'items[2].reason'")
    message: str = Field(description="what is wrong and what the contract allows")


class DeliveryReceipt(TicketResponse):
    """What ``deliver_order`` returns: the ticket, how the answer was checked, and when the
    order that the platform answered was sent (the worker's clock, just before the call)."""

    http_status: int | None = Field(default=None, description="201 new, 200 repeat")
    authenticated: Authenticated = None
    sent_at: UtcDatetime | None = None


class PollResult(PlatformStatus):
    """What ``poll_platform`` returns: the answer's valid items, and the ones left out."""

    malformed_items: list[MalformedItem] = Field(default_factory=list)
    authenticated: Authenticated = None


class NoticeResult(NoticeReceipt):
    """What ``send_notice`` returns: the platform's receipt, and how it was checked."""

    http_status: int | None = Field(default=None, description="202 new, 200 repeat")
    authenticated: Authenticated = None


class PlatformFailure(BaseModel):
    """``details[0]`` of every ApplicationError an API activity raises (JSON-safe)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: str = Field(description="the ApplicationError type, e.g. 'PlatformRejected'")
    method: str
    path: str
    http_status: int | None = None
    platform_error: str | None = Field(
        default=None, description="the platform's own message (its error body), escaped"
    )
    message: str
    authenticated: Authenticated = None


def utc_now() -> datetime:
    """Current time as an aware UTC datetime (for callers outside workflow code)."""
    return datetime.now(UTC)
