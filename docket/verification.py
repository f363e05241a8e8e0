"""Independent removal verification: classify what a probe saw (pure, no I/O).

The status code lies (DOMAIN.md): platforms answer 200 with a "content isn't available" page for
removed posts, 404 for posts that merely need a login, and country-specific pages for legal
restrictions. So :func:`classify` looks at platform-specific, versioned *markers* first and at the
status code second:

1. login-wall markers -> ``login_wall`` (inconclusive, never ``removed``)
2. geo-restriction markers -> ``geo_restricted``
3. removed markers -> ``removed``
4. status: 404 -> ``not_found`` (inconclusive: may be a login-only post; kept distinct from
   ``removed``), 410 -> ``removed``, 451 -> ``legally_blocked`` (with the ``Link: <..>;
   rel="blocked-by"`` target), 401/403 or a final URL on a login page -> ``login_wall``,
   5xx / no response / anything unexpected -> ``probe_error``, 2xx -> ``available``.

:func:`classify` never raises: any bytes, any status, any headers give a Classification.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from docket.platform_protocol import Effect, UtcDatetime
from docket.text import check_text


class Observation(StrEnum):
    """What we saw ourselves, independent of what the platform claims."""

    AVAILABLE = "available"
    REMOVED = "removed"
    GEO_RESTRICTED = "geo_restricted"
    LEGALLY_BLOCKED = "legally_blocked"
    LOGIN_WALL = "login_wall"
    NOT_FOUND = "not_found"
    PROBE_ERROR = "probe_error"
    #: No vantage point is configured for that country: nothing was fetched.
    NO_VANTAGE = "no_vantage"


#: Observations that prove neither that the content is gone nor that it is up.
INCONCLUSIVE: frozenset[Observation] = frozenset(
    {
        Observation.LOGIN_WALL,
        Observation.NOT_FOUND,
        Observation.PROBE_ERROR,
        Observation.NO_VANTAGE,
    }
)
#: Observations that show the content is not reachable from the probing vantage.
UNREACHABLE: frozenset[Observation] = frozenset(
    {Observation.REMOVED, Observation.GEO_RESTRICTED, Observation.LEGALLY_BLOCKED}
)


def _marker_text(value: str) -> str:
    check_text(value)
    if len(_normalise(value)) < 3:
        # a one- or two-letter marker would be found on almost any page
        raise ValueError("a marker needs at least 3 characters besides whitespace")
    return value


MarkerText = Annotated[str, Field(max_length=200), AfterValidator(_marker_text)]


class MarkerSet(BaseModel):
    """Platform-specific page markers (case-insensitive substrings), versioned.

    Bump ``version`` whenever the lists change; the version is recorded with every piece of
    evidence so old evidence can be re-read against the markers it was classified with.
    """

    model_config = ConfigDict(frozen=True)

    version: str = Field(min_length=1, max_length=64)
    removed: list[MarkerText] = Field(default_factory=list, max_length=50)
    geo_restricted: list[MarkerText] = Field(default_factory=list, max_length=50)
    login_wall: list[MarkerText] = Field(default_factory=list, max_length=50)


class Classification(BaseModel):
    model_config = ConfigDict(frozen=True)

    observation: Observation
    marker: str = Field(description="what decided: 'removed:<text>@v3', 'status:451', ...")
    blocked_by: str | None = None
    inconclusive: bool


VantageKind = Literal["direct", "proxy", "simulated", "none"]
#: Fields added with real vantage points: left out of the JSON form while unset, so evidence
#: recorded before them serializes (and hashes) exactly as it did.
_VANTAGE_FIELDS = ("vantage_kind", "exit", "served_by")


class Evidence(BaseModel):
    """One probe of one item from one vantage, as recorded for the audit trail."""

    model_config = ConfigDict(frozen=True)

    item_id: str
    vantage: str = Field(description="'control' or an ISO country code such as 'VN'")
    url: str
    observation: Observation
    inconclusive: bool
    status_code: int | None
    final_url: str
    body_sha256: str | None
    body_bytes: int = 0
    truncated: bool = False
    marker: str
    blocked_by: str | None = None
    error: str | None = None
    probed_at: UtcDatetime
    markers_version: str
    vantage_kind: VantageKind | None = Field(
        default=None,
        description="how the vantage reached the content: 'proxy' (a per-country exit), "
        "'direct' (the worker's own connection), 'simulated' (the simulator's header stand-in) "
        "or 'none' (no vantage configured: nothing fetched)",
    )
    exit: str | None = Field(
        default=None, description="the vantage's exit: its label, or the proxy (no credentials)"
    )
    served_by: str | None = Field(
        default=None, description="the address the probe's connection reached (host:port)"
    )

    @model_serializer(mode="wrap")
    def _without_unset_vantage(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in _VANTAGE_FIELDS:
            if data.get(name) is None:
                data.pop(name, None)
        return data


_LOGIN_PATH_RE = re.compile(
    r"(^|/)(login|log-in|signin|sign-in|sign_in|accounts/login|auth/login|checkpoint)(/|$|\.)",
    re.IGNORECASE,
)
_LINK_RE = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]*)*)")
_REL_RE = re.compile(r"""rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""", re.IGNORECASE)


def _normalise(text: str) -> str:
    text = html.unescape(text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u00a0", " ")
    return " ".join(text.split()).casefold()


def _first_marker(page: str, kind: str, markers: Iterable[str], version: str) -> str | None:
    for marker in markers:
        needle = _normalise(marker)
        if needle and needle in page:
            return f"{kind}:{marker}@{version}"
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    try:
        for key, value in headers.items():
            if str(key).lower() == wanted:
                return str(value)
    except Exception:
        return None
    return None


def blocked_by(link_header: str | None) -> str | None:
    """The target of the first ``Link`` entry with ``rel="blocked-by"`` (RFC 7725), if any."""
    if not link_header:
        return None
    for match in _LINK_RE.finditer(link_header):
        for rel in _REL_RE.finditer(match.group(2)):
            values = (rel.group(1) or rel.group(2) or "").lower().split()
            if "blocked-by" in values:
                return match.group(1).strip()
    return None


def is_login_url(url: str) -> bool:
    """True when ``url`` looks like a login page (a redirect there is a login wall)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(_LOGIN_PATH_RE.search(parts.path))


def _result(observation: Observation, marker: str, blocked: str | None = None) -> Classification:
    return Classification(
        observation=observation,
        marker=marker,
        blocked_by=blocked,
        inconclusive=observation in INCONCLUSIVE,
    )


def classify(
    status_code: int | None,
    final_url: str,
    body: bytes,
    headers: Mapping[str, str],
    markers: MarkerSet,
) -> Classification:
    """Classify one probe. Markers first, status code second; never raises."""
    if status_code is None:
        return _result(Observation.PROBE_ERROR, "status:none")
    if 500 <= status_code <= 599:
        return _result(Observation.PROBE_ERROR, f"status:{status_code}")

    page = _normalise(body.decode("utf-8", errors="replace"))
    version = markers.version
    found = _first_marker(page, "login_wall", markers.login_wall, version)
    if found:
        return _result(Observation.LOGIN_WALL, found)
    found = _first_marker(page, "geo_restricted", markers.geo_restricted, version)
    if found:
        return _result(Observation.GEO_RESTRICTED, found)
    found = _first_marker(page, "removed", markers.removed, version)
    if found:
        return _result(Observation.REMOVED, found)

    if status_code == 404:
        return _result(Observation.NOT_FOUND, "status:404")
    if status_code == 410:
        return _result(Observation.REMOVED, "status:410")
    if status_code == 451:
        return _result(
            Observation.LEGALLY_BLOCKED, "status:451", blocked_by(_header(headers, "link"))
        )
    if status_code in (401, 403):
        return _result(Observation.LOGIN_WALL, f"status:{status_code}")
    if is_login_url(final_url):
        return _result(Observation.LOGIN_WALL, "login_url")
    if 200 <= status_code <= 299:
        return _result(Observation.AVAILABLE, f"status:{status_code}")
    return _result(Observation.PROBE_ERROR, f"status:{status_code}")


def contradicts(effect: Effect | None, observation: Observation) -> bool:
    """True when the platform claims the content is gone but we saw it available.

    For ``restricted`` the caller must pass an observation from inside the restricted
    territory; a control-vantage ``available`` is expected for a restriction.
    """
    return (
        effect in ("removed_globally", "restricted", "already_removed")
        and observation is Observation.AVAILABLE
    )


__all__ = [
    "INCONCLUSIVE",
    "UNREACHABLE",
    "Classification",
    "Evidence",
    "MarkerSet",
    "Observation",
    "blocked_by",
    "classify",
    "contradicts",
    "is_login_url",
]
