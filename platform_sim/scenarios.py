"""Scenario knobs of the platform simulator, the slug-token convention and the clock.

Behaviour is chosen at two levels:

* **Platform level**: a :class:`PlatformScenario` per platform (simulator config; presets via
  :meth:`PlatformScenario.preset`): comply, partial, decline, ignore, slow_ack, flaky, info, late.
* **Item level**: a :class:`ItemScenario` per content slug, from ``PlatformScenario.items[slug]``
  (explicit config wins) or from tokens at the front of the slug.

Slug tokens: ``<token>[.<token>...]--<name>``, e.g. ``451--impostor-page`` or
``restrict.err2--video-17``. If any token is unknown the whole slug is a plain name. Item tokens
change that item; request tokens (``ignore``, ``late``, ``slowack``, ``flaky[N]``, ``info``)
change the whole order that contains the item. See docs/platform-protocol.md for the table.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from docket.verification import MarkerSet

Decision = Literal["remove", "restrict", "decline", "notfound", "already", "moreinfo"]
View = Literal["404", "410", "451", "marker", "geo", "login"]

DECISIONS: frozenset[str] = frozenset(
    {"remove", "restrict", "decline", "notfound", "already", "moreinfo"}
)
VIEWS: frozenset[str] = frozenset({"404", "410", "451", "marker", "geo", "login"})
REQUEST_TOKENS: frozenset[str] = frozenset({"ignore", "late", "slowack", "info"})
_COUNTED = re.compile(r"^(resurface|err|flaky)([0-9]{0,3})$")
SLUG_RE = re.compile(r"^[A-Za-z0-9._~-]{1,200}$")

DEFAULT_INFO_REQUEST = (
    "Please provide the decision of the competent authority and the exact provision "
    "each item is said to breach."
)
DEFAULT_ITEM_QUESTION = "The URL does not identify a single piece of content: which post is meant?"
DEFAULT_DECLINE_REASON = (
    "After review, the content does not violate our Community Standards or the cited law; "
    "no action taken."
)


class PageTexts(BaseModel):
    """The texts the simulated platform shows; they match docket/data/platforms.toml."""

    model_config = ConfigDict(frozen=True)

    removed: str
    geo_restricted: str
    login_wall: str


PAGES: dict[str, PageTexts] = {
    "facebook": PageTexts(
        removed="This content isn't available right now",
        geo_restricted="This content isn't available in your country because of a legal "
        "restriction.",
        login_wall="You must log in to continue.",
    ),
    "youtube": PageTexts(
        removed="Video unavailable. This video has been removed for violating local law.",
        geo_restricted="This content is not available on this country domain due to a legal "
        "complaint from the government.",
        login_wall="Sign in to confirm your age",
    ),
    "tiktok": PageTexts(
        removed="Video currently unavailable",
        geo_restricted="This video is not available in your region",
        login_wall="Log in to TikTok",
    ),
}
GENERIC_PAGES = PageTexts(
    removed="This content isn't available right now",
    geo_restricted="This content is not available in your country due to a legal complaint.",
    login_wall="Log in to continue",
)


def pages_for(platform: str) -> PageTexts:
    return PAGES.get(platform, GENERIC_PAGES)


def markers_for(platform: str, version: str = "sim-1") -> MarkerSet:
    """A MarkerSet that recognises the simulator's pages for ``platform``."""
    pages = pages_for(platform)
    return MarkerSet(
        version=version,
        removed=[pages.removed],
        geo_restricted=[pages.geo_restricted],
        login_wall=[pages.login_wall],
    )


class ItemScenario(BaseModel):
    """What the platform decides for one item and how its content URL behaves afterwards."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision = "remove"
    view: View = Field(
        default="marker", description="how removed content answers; restrict always uses geo"
    )
    liar: bool = Field(default=False, description="claims removal but keeps serving the content")
    resurface_after_probes: int | None = Field(default=None, ge=0)
    resurface_after_seconds: float | None = Field(default=None, ge=0)
    probe_failures: int = Field(default=0, ge=0, description="first N probes answer 503")
    probe_delay: float = Field(default=0.0, ge=0, description="sim seconds before answering")
    restricted_in: list[str] | None = None
    reason: str | None = None


class PlatformScenario(BaseModel):
    """How one platform answers orders. Delays are in simulator-clock seconds."""

    model_config = ConfigDict(extra="forbid")

    name: str = "comply"
    automatic: bool = Field(
        default=True,
        description="false: the platform does nothing on its own; only the conformance hooks "
        "(POST /v1/conformance/requests/{ticket}/actions) make it act",
    )
    acknowledge: bool = True
    ack_after_second_notice: bool = False
    ack_delay: float = Field(default=1.0, ge=0)
    decide_delay: float = Field(default=1.0, ge=0)
    slow_ack_delay: float = Field(default=30.0, ge=0)
    info_request: str | None = None
    fail_first: int = Field(default=0, ge=0, description="first N API calls per request: 503")
    decision_cycle: list[Decision] | None = None
    comply_on_renotify: bool = True
    default_item: ItemScenario = Field(default_factory=ItemScenario)
    items: dict[str, ItemScenario] = Field(default_factory=dict)
    pages: PageTexts | None = None

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> PlatformScenario:
        """A named preset: comply, partial, decline, ignore, slow_ack, flaky, info, late, manual."""
        base: dict[str, Any] = {"name": name}
        if name == "comply":
            pass
        elif name == "partial":
            base["decision_cycle"] = ["remove", "decline"]
        elif name == "decline":
            base["default_item"] = ItemScenario(decision="decline")
        elif name == "ignore":
            base["acknowledge"] = False
        elif name == "slow_ack":
            base["ack_delay"] = overrides.pop("slow_ack_delay", 30.0)
        elif name == "flaky":
            base["fail_first"] = 2
        elif name == "info":
            base["info_request"] = DEFAULT_INFO_REQUEST
        elif name == "late":
            base["ack_after_second_notice"] = True
        elif name == "manual":
            base["automatic"] = False
        else:
            raise ValueError(f"unknown scenario preset {name!r}")
        base.update(overrides)
        return cls.model_validate(base)


PRESETS: tuple[str, ...] = (
    "comply",
    "partial",
    "decline",
    "ignore",
    "slow_ack",
    "flaky",
    "info",
    "late",
    "manual",
)


class SlugKnobs(BaseModel):
    """Tokens parsed from a slug: item overrides and request-level knobs."""

    model_config = ConfigDict(frozen=True)

    item: dict[str, Any] = Field(default_factory=dict)
    request: dict[str, Any] = Field(default_factory=dict)


def parse_slug(slug: str) -> SlugKnobs:
    """Parse ``tok.tok--name``; a slug with any unknown token carries no knobs."""
    if "--" not in slug:
        return SlugKnobs()
    prefix = slug.split("--", 1)[0]
    item: dict[str, Any] = {}
    request: dict[str, Any] = {}
    for token in prefix.split("."):
        counted = _COUNTED.match(token)
        if token in DECISIONS:
            item["decision"] = token
        elif token in VIEWS:
            item["view"] = token
        elif token == "liar":
            item["liar"] = True
        elif token == "slow":
            item["probe_delay"] = 2.0
        elif token == "ignore":
            request["acknowledge"] = False
        elif token == "late":
            request["ack_after_second_notice"] = True
        elif token == "slowack":
            request["slowack"] = True
        elif token == "prompt":  # acknowledged and decided at once: one poll sees both
            request["ack_delay"] = 0.0
            request["decide_delay"] = 0.0
        elif token == "info":
            request["info_request"] = DEFAULT_INFO_REQUEST
        elif counted:
            kind, digits = counted.group(1), counted.group(2)
            count = int(digits) if digits else 2
            if kind == "resurface":
                item["resurface_after_probes"] = count
            elif kind == "err":
                item["probe_failures"] = count
            else:
                request["fail_first"] = count
        else:
            return SlugKnobs()
    return SlugKnobs(item=item, request=request)


def item_scenario(scenario: PlatformScenario, slug: str, index: int | None = None) -> ItemScenario:
    """Resolve the item scenario: explicit config, else default + slug tokens (+ cycle)."""
    if slug in scenario.items:
        return scenario.items[slug]
    knobs = parse_slug(slug)
    data = scenario.default_item.model_dump()
    if index is not None and scenario.decision_cycle and "decision" not in knobs.item:
        data["decision"] = scenario.decision_cycle[index % len(scenario.decision_cycle)]
    data.update(knobs.item)
    if data["decision"] == "restrict":
        data["view"] = "geo"
    return ItemScenario.model_validate(data)


def request_scenario(scenario: PlatformScenario, slugs: list[str]) -> PlatformScenario:
    """The platform scenario adjusted by request tokens found in any of the order's slugs."""
    changes: dict[str, Any] = {}
    for slug in slugs:
        changes.update(parse_slug(slug).request)
    if not changes:
        return scenario
    if changes.pop("slowack", False):
        changes["ack_delay"] = scenario.slow_ack_delay
    return scenario.model_copy(update=changes)


class SimClock:
    """Simulator time: wall time, optionally sped up, plus manual advances (for tests)."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._lock = threading.Lock()
        self._wall0 = time.time()
        self._mono0 = time.monotonic()
        self._offset = 0.0

    def now(self) -> float:
        """Simulator time as Unix seconds."""
        with self._lock:
            return self._wall0 + (time.monotonic() - self._mono0) * self.speed + self._offset

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the simulator clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()

    def real_seconds(self, sim_seconds: float) -> float:
        """How long ``sim_seconds`` of simulator time lasts in wall time."""
        return sim_seconds / self.speed
