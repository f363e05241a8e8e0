"""Validated models: the order, its items, actors and every command the lifecycle takes.

Pure pydantic v2 models, safe in Temporal's workflow sandbox and carried over the wire by
`temporalio.contrib.pydantic`'s data converter. Schema checks live here; checks against the
reference data (known authority, platform, legal basis...) live in `docket.validation`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from docket.lifecycle import Role
from docket.text import check_text, find_unsafe

if TYPE_CHECKING:
    from docket.platform_protocol import PlatformItemEffect


def _one_line(value: str) -> str:
    """One line of text under the text policy (docket.text): no line breaks, no control or
    bidi characters, so one audit entry stays one line and no viewer shows forged text."""
    return check_text(value)


def _multiline(value: str) -> str:
    """Text that may hold line breaks and tabs, otherwise under the same policy."""
    return check_text(value, multiline=True)


Line = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(_one_line),
]
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000),
    AfterValidator(_multiline),
]
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=4_000),
    AfterValidator(_multiline),
]
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
PolicyId = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9-]{1,40}$")]
ItemId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
LanguageTag = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


# The common well-formed URL, all printable ASCII: http(s), a host of letters, digits, dots and
# hyphens, an optional port of at most 5 digits, then a path, query or fragment. What it
# matches passes every check below (the port's range aside, checked after); anything else
# (IPv6 hosts, user info, other characters) takes the full checks. A fast path for the URLs
# validated in every order, reference snapshot and probe answer.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::([0-9]{1,5}))?(?:[/?#][!-~]*)?")


def check_url(value: str) -> str:
    """An exact content URL: http(s), a host, no whitespace, at most 2,048 characters."""
    if len(value) > 2048:
        raise ValueError("URL is longer than 2,048 characters")
    if is_plain_url(value):
        return value
    return check_url_fully(value)


def is_plain_url(value: str) -> bool:
    """`value` is a plain URL (`_PLAIN_URL`, its port in range): it passes `check_url_fully`."""
    plain = _PLAIN_URL.fullmatch(value)
    return plain is not None and (plain.group(1) is None or int(plain.group(1)) <= 65535)


def check_url_fully(value: str) -> str:
    """`check_url` without the fast path (any URL, however written)."""
    if len(value) > 2048:
        raise ValueError("URL is longer than 2,048 characters")
    if any(c.isspace() for c in value) or find_unsafe(value) is not None:
        raise ValueError("URL must not contain spaces, control or invisible characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"URL must start with http:// or https:// (got {value[:40]!r})")
    if not parts.hostname:
        raise ValueError("URL has no host")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ValueError(f"URL has an invalid port: {exc}") from None
    return value


Url = Annotated[str, AfterValidator(check_url)]


# --- actors ---------------------------------------------------------------------------------


class Actor(Model):
    """Who acts. Every decision carries one; it is recorded in the audit log and history."""

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._:@-]{0,127}$")]
    roles: Annotated[tuple[Role, ...], Field(min_length=1)]
    organization: Line
    name: Line | None = None

    def has_any(self, roles: frozenset[Role]) -> bool:
        return bool(set(self.roles) & roles)


SYSTEM_ACTOR = Actor(id="docket", roles=(Role.SYSTEM,), organization="Docket")


# --- the order --------------------------------------------------------------------------------

ContentType = Literal["post", "account", "page", "group", "video", "channel", "comment", "image"]
Priority = Literal["normal", "emergency"]
Channel = Literal["platform_api", "platform_portal", "email", "letter"]


class LegalBasisCitation(Model):
    """A legal basis from the reference data plus the exact provision relied on."""

    basis: Identifier
    provision: Line


class Item(Model):
    item_id: ItemId
    url: Url
    platform: Identifier | None = None  # defaults to the request's platform
    content_type: ContentType
    category: Identifier
    reason: Reason


class Order(Model):
    """An authority's request to one platform (DSA Art. 9 fields plus Circular 38 timing)."""

    authority: Identifier
    reference: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    officer: Identifier
    channel: Channel = "platform_api"
    platform: Identifier
    legal_bases: Annotated[tuple[LegalBasisCitation, ...], Field(min_length=1)]
    statement_of_reasons: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=20, max_length=20_000),
        AfterValidator(_multiline),
    ]
    territorial_scope: Annotated[tuple[CountryCode | Literal["global"], ...], Field(min_length=1)]
    scope_justification: Text | None = None
    redress: Text
    priority: Priority = "normal"
    sla_policy: PolicyId
    language: LanguageTag
    issued_at: AwareDatetime
    items: Annotated[tuple[Item, ...], Field(min_length=1, max_length=500)]

    @field_validator("reference")
    @classmethod
    def _reference_is_one_line(cls, value: str) -> str:
        return _one_line(value)

    @model_validator(mode="after")
    def _consistent(self) -> Order:
        problems: list[str] = []
        if "global" in self.territorial_scope:
            if len(self.territorial_scope) > 1:
                problems.append("territorial_scope: 'global' cannot be combined with countries")
            if not self.scope_justification:
                problems.append(
                    "scope_justification: required when territorial_scope is 'global' "
                    "(DSA Art. 9: scope limited to what is strictly necessary)"
                )
        if len(set(self.territorial_scope)) != len(self.territorial_scope):
            problems.append("territorial_scope: countries are listed twice")
        seen: set[str] = set()
        for index, item in enumerate(self.items):
            if item.item_id in seen:
                problems.append(f"items[{index}].item_id: {item.item_id!r} is used twice")
            seen.add(item.item_id)
            if item.platform is not None and item.platform != self.platform:
                problems.append(
                    f"items[{index}].platform: {item.platform!r} differs from the request's "
                    f"platform {self.platform!r}; file one request per platform"
                )
        urls = [item.url for item in self.items]
        if len(set(urls)) != len(urls):
            problems.append("items: the same URL is listed twice")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(item.category for item in self.items))


# --- commands (one per human trigger of the lifecycle) ---------------------------------------

Effect = Literal[
    "removed_globally", "restricted", "declined", "needs_more_info", "not_found", "already_removed"
]
# What a platform's claim about an item means (the case, the workflow and the report use these):
# the platform acted on the content (removed or restricted it);
EFFECT_CLAIMS: frozenset[str] = frozenset({"removed_globally", "restricted", "already_removed"})
# the content is gone, everywhere or where it was restricted (what our probes must confirm);
GONE_CLAIMS: frozenset[str] = EFFECT_CLAIMS | {"not_found"}
# the item is decided (not pending, not waiting for more information).
DECISIONS: frozenset[str] = GONE_CLAIMS | {"declined"}
AppellantType = Literal["content_owner", "platform", "authority"]
AppealOutcome = Literal["upheld", "reversed", "partially_reversed"]


class Command(Model):
    """What every command carries: who acts and why."""

    trigger: ClassVar[str]
    actor: Actor
    reason: Reason


class Approve(Command):
    trigger: ClassVar[str] = "approve"


class Reject(Command):
    trigger: ClassVar[str] = "reject"


class RetryDelivery(Command):
    trigger: ClassVar[str] = "retry_delivery"


class Acknowledge(Command):
    trigger: ClassVar[str] = "acknowledge"
    acknowledged_at: AwareDatetime | None = None  # the platform's own timestamp, if it has one


class ItemEffect(Model):
    item_id: ItemId
    effect: Effect
    restricted_in: tuple[CountryCode, ...] = ()
    reason: Reason | None = None
    effect_at: AwareDatetime | None = None
    platform_ref: Line | None = None
    uploader_notified: bool | None = None

    @classmethod
    def from_platform(cls, reported: PlatformItemEffect) -> ItemEffect:
        """The command form of what a platform's API reported (raises ValidationError when
        the report cannot be recorded, e.g. a decline without reasons)."""
        return cls(
            item_id=reported.item_id,
            effect=reported.effect,  # None (pending) is refused by validation
            restricted_in=tuple(reported.restricted_in),
            reason=reported.reason,
            effect_at=reported.effect_at,
            platform_ref=reported.platform_ref,
            uploader_notified=reported.uploader_notified,
        )

    @model_validator(mode="after")
    def _consistent(self) -> ItemEffect:
        if self.effect == "restricted" and not self.restricted_in:
            raise ValueError("restricted_in: name the countries where the item is restricted")
        if self.effect != "restricted" and self.restricted_in:
            raise ValueError("restricted_in: only allowed when effect is 'restricted'")
        if self.effect == "declined" and not self.reason:
            raise ValueError("reason: a decline must state its reasons")
        return self


class ReportEffect(Command):
    trigger: ClassVar[str] = "report_effect"
    effects: Annotated[tuple[ItemEffect, ...], Field(min_length=1, max_length=500)]

    @model_validator(mode="after")
    def _unique_items(self) -> ReportEffect:
        ids = [e.item_id for e in self.effects]
        if len(set(ids)) != len(ids):
            raise ValueError("effects: an item is reported twice in one command")
        return self


class RequestInfo(Command):
    trigger: ClassVar[str] = "request_info"
    question: Text


class ProvideInfo(Command):
    trigger: ClassVar[str] = "provide_info"
    answer: Text


class Escalate(Command):
    trigger: ClassVar[str] = "escalate"


class Renotify(Command):
    trigger: ClassVar[str] = "renotify"


class Close(Command):
    trigger: ClassVar[str] = "close"


class Withdraw(Command):
    trigger: ClassVar[str] = "withdraw"


class FileAppeal(Command):
    trigger: ClassVar[str] = "file_appeal"
    appellant_type: AppellantType
    target_items: Annotated[tuple[ItemId, ...], Field(min_length=1)]
    grounds: Text


class DecideAppeal(Command):
    trigger: ClassVar[str] = "decide_appeal"
    outcome: AppealOutcome
    reversed_items: tuple[ItemId, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> DecideAppeal:
        if self.outcome == "partially_reversed" and not self.reversed_items:
            raise ValueError("reversed_items: name the items reversed when partially reversing")
        if self.outcome == "upheld" and self.reversed_items:
            raise ValueError("reversed_items: an upheld decision reverses no items")
        return self


COMMANDS: dict[str, type[Command]] = {
    cls.trigger: cls
    for cls in (
        Approve,
        Reject,
        RetryDelivery,
        Acknowledge,
        ReportEffect,
        RequestInfo,
        ProvideInfo,
        Escalate,
        Renotify,
        Close,
        Withdraw,
        FileAppeal,
        DecideAppeal,
    )
}


class Receipt(Model):
    """What a state-changing command returns once its audit entry is durable."""

    request_id: str
    trigger: str
    from_state: str
    state: str
    sequence: int
    hash: str
    outcome: str | None = None


def parse_command(trigger: str, payload: Any) -> Command:
    """Validate a raw command payload for `trigger` (raises pydantic.ValidationError)."""
    try:
        model = COMMANDS[trigger]
    except KeyError:
        raise ValueError(
            f"unknown command {trigger!r}; commands: {', '.join(sorted(COMMANDS))}"
        ) from None
    if isinstance(payload, model):
        return payload
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json")
    return model.model_validate(payload)


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, microseconds kept: the one timestamp format in the log."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must carry a timezone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
