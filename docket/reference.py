"""Reference data as files: authorities, platforms, legal bases, SLA policies, categories, actors.

The shipped defaults live in `docket/data/*.toml`; a deployment points `DOCKET_REFERENCE_DIR`
at its own copy. Every file is validated at load; errors name the file, the entry and the
field, and all of them are reported at once.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from docket.lifecycle import Role
from docket.models import Actor, Identifier, Line, PolicyId, Url
from docket.verification import MarkerSet

DEFAULT_DIR = Path(__file__).parent / "data"
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ISO_DURATION = TypeAdapter(timedelta)


def parse_duration(value: Any) -> timedelta:
    """'90s', '30m', '24h', '7d' (or a timedelta / number of seconds) -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
        if value.startswith("P"):  # ISO 8601, as pydantic serialises a timedelta
            return _ISO_DURATION.validate_python(value)
    raise ValueError(f"expected a duration like '90s', '30m', '24h' or '7d', got {value!r}")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class RefModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Authority(RefModel):
    id: Identifier
    name: Line
    name_en: Line
    type: Identifier
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    parent: Line | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    successor: Identifier | None = None


class Platform(RefModel):
    """What the workflow may know about a platform: never its secret, only where to find it."""

    id: Identifier
    name: Line
    base_url: Url
    credential_env: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]
    api: bool = True
    poll_interval: Duration = timedelta(seconds=30)
    markers: MarkerSet
    # Probe the content URLs from `control` when the request is filed, before approval (the
    # baseline later probes are compared with). Off for a platform that must not see any
    # traffic about an order before it is approved (docs/platform-protocol.md, "Traffic").
    baseline_probes: bool = True
    # Refuse API answers without a valid response signature (contract 1.1). Off: unsigned
    # answers are accepted and recorded as not authenticated.
    require_signed_responses: bool = False


class LegalBasis(RefModel):
    id: Identifier
    instrument: Line
    title: Line
    jurisdiction: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    url: Url
    in_force_from: date | None = None
    in_force_until: date | None = None
    replaced_by: Identifier | None = None


class SlaPolicy(RefModel):
    id: PolicyId
    title: Line
    legal_basis: Identifier
    respond_within: Duration | None = None
    second_notice_within: Duration | None = None
    effect_within: Duration | None = None
    appeal_window: Duration
    rechecks: tuple[Duration, ...] = ()
    emergency: bool = False
    demo: bool = False

    @property
    def has_clock(self) -> bool:
        return self.respond_within is not None


class Category(RefModel):
    id: Identifier
    name: Line
    name_vi: Line
    dsa_category: Annotated[str, Field(pattern=r"^STATEMENT_CATEGORY_[A-Z_]+$")]
    dsa_keyword: Annotated[str, Field(pattern=r"^KEYWORD_[A-Z_]+$")]
    google_reason: Line
    always_reported: bool = False


class OrganizationEntry(RefModel):
    """An organization of the roster: who vouches for actors, and for whom they may act."""

    id: Identifier
    name: Line
    acts_for: Annotated[
        tuple[
            Annotated[str, Field(pattern=r"^(any|(authority|platform):[a-z0-9][a-z0-9._-]*)$")], ...
        ],
        Field(min_length=1),
    ]


class ActorEntry(RefModel):
    """An actor of the roster (the demo issues each a key and a credential). Who acts is
    proven by the credential a command is signed with, never looked up here."""

    id: Identifier
    name: Line
    roles: Annotated[tuple[Role, ...], Field(min_length=1)]
    organization: Identifier  # the id of an entry of organizations.toml


class ReferenceError(Exception):
    """Reference data that does not load; `problems` lists every one with file and field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid reference data:\n  " + "\n  ".join(problems))


T = TypeVar("T", bound=RefModel)


class ReferenceData(RefModel):
    authorities: dict[str, Authority]
    platforms: dict[str, Platform]
    legal_bases: dict[str, LegalBasis]
    sla_policies: dict[str, SlaPolicy]
    categories: dict[str, Category]
    organizations: dict[str, OrganizationEntry]
    actors: dict[str, ActorEntry]
    source: str

    def actor(self, actor_id: str) -> Actor:
        """The roster's actor as commands name it (roles and organization's display name)."""
        try:
            entry = self.actors[actor_id]
        except KeyError:
            known = ", ".join(sorted(self.actors))
            raise KeyError(f"unknown actor {actor_id!r}; known: {known}") from None
        organization = self.organizations[entry.organization]
        return Actor(
            id=entry.id, roles=entry.roles, organization=organization.name, name=entry.name
        )

    def for_workflows(self) -> ReferenceData:
        """What a request is checked against (no roster: who acts is proven, not looked up)."""
        return self.model_copy(update={"actors": {}, "organizations": {}})


# (file, table key, model, attribute)
_FILES: tuple[tuple[str, str, type[RefModel], str], ...] = (
    ("authorities.toml", "authority", Authority, "authorities"),
    ("platforms.toml", "platform", Platform, "platforms"),
    ("legal_bases.toml", "legal_basis", LegalBasis, "legal_bases"),
    ("sla_policies.toml", "policy", SlaPolicy, "sla_policies"),
    ("categories.toml", "category", Category, "categories"),
    ("organizations.toml", "organization", OrganizationEntry, "organizations"),
    ("actors.toml", "actor", ActorEntry, "actors"),
)


def format_loc(loc: tuple[int | str, ...]) -> str:
    """('items', 0, 'url') -> 'items[0].url'"""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def load_reference(directory: Path | str | None = None) -> ReferenceData:
    """Load and cross-check every reference file; raise ReferenceError listing all problems."""
    root = Path(directory or os.environ.get("DOCKET_REFERENCE_DIR") or DEFAULT_DIR)
    problems: list[str] = []
    tables: dict[str, dict[str, Any]] = {}
    for filename, key, model, attribute in _FILES:
        path = root / filename
        entries: dict[str, Any] = {}
        tables[attribute] = entries
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            problems.append(f"{path}: file is missing")
            continue
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: not valid TOML: {exc}")
            continue
        rows = raw.get(key)
        unknown = sorted(set(raw) - {key})
        if unknown:
            problems.append(f"{path}: unknown tables {unknown}; expected [[{key}]] entries")
        if not isinstance(rows, list) or not rows:
            problems.append(f"{path}: expected one or more [[{key}]] entries")
            continue
        for index, row in enumerate(rows):
            where = f"{path.name}: {key}[{index}]"
            try:
                entry = model.model_validate(row)
            except ValidationError as exc:
                for err in exc.errors():
                    problems.append(f"{where}.{format_loc(err['loc'])}: {err['msg']}")
                continue
            entry_id = str(getattr(entry, "id"))  # noqa: B009 - every reference model has an id
            if entry_id in entries:
                problems.append(f"{where}.id: {entry_id!r} is defined twice")
            entries[entry_id] = entry
    _cross_check(tables, problems)
    if problems:
        raise ReferenceError(problems)
    return ReferenceData(source=str(root), **tables)


def _cross_check(tables: dict[str, dict[str, Any]], problems: list[str]) -> None:
    for actor in tables.get("actors", {}).values():
        if actor.organization not in tables.get("organizations", {}):
            problems.append(
                f"actors.toml: actor {actor.id!r}.organization: unknown organization "
                f"{actor.organization!r}"
            )
    for policy in tables.get("sla_policies", {}).values():
        if policy.legal_basis not in tables.get("legal_bases", {}):
            problems.append(
                f"sla_policies.toml: policy {policy.id!r}.legal_basis: unknown legal basis "
                f"{policy.legal_basis!r}"
            )
        if policy.second_notice_within and not policy.respond_within:
            problems.append(
                f"sla_policies.toml: policy {policy.id!r}: second_notice_within needs "
                "respond_within"
            )
    for authority in tables.get("authorities", {}).values():
        if authority.successor and authority.successor not in tables.get("authorities", {}):
            problems.append(
                f"authorities.toml: authority {authority.id!r}.successor: unknown authority "
                f"{authority.successor!r}"
            )
    for basis in tables.get("legal_bases", {}).values():
        if basis.replaced_by and basis.replaced_by not in tables.get("legal_bases", {}):
            problems.append(
                f"legal_bases.toml: legal_basis {basis.id!r}.replaced_by: unknown legal basis "
                f"{basis.replaced_by!r}"
            )


def write_reference(reference: ReferenceData, directory: Path | str) -> Path:
    """Write `reference` as a reference directory `load_reference` reads back equal (for a
    deployment's own copy, and for workers started as processes by tests and benchmarks)."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    for filename, key, _model, attribute in _FILES:
        entries = getattr(reference, attribute).values()
        lines = [f"# Written by docket.reference.write_reference from {reference.source}\n"]
        for entry in entries:
            lines.append(f"[[{key}]]")
            tables: list[tuple[str, dict[str, Any]]] = []
            for name, value in entry.model_dump(mode="json", exclude_none=True).items():
                if isinstance(value, dict):
                    tables.append((name, value))
                else:
                    lines.append(f"{name} = {_toml_value(value)}")
            for name, table in tables:
                lines.append(f"\n[{key}.{name}]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None]
            lines.append("")
        (root / filename).write_text("\n".join(lines), encoding="utf-8")
    return root


def _toml_value(value: Any) -> str:
    """A TOML value for a JSON-able one: JSON's string escapes are TOML's basic-string ones."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


@cache
def default_reference() -> ReferenceData:
    """The reference data this process uses (loaded once)."""
    return load_reference()
