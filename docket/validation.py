"""Turn raw request data into a validated `Order`, or every problem with its field path.

Schema problems (pydantic) and reference problems (unknown platform, legal basis no longer in
force, ...) are collected together, so a user fixes a file in one pass.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from docket.models import Order, utc_iso
from docket.reference import ReferenceData, format_loc

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Issue:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidRequest(Exception):
    """A request that cannot be accepted; `issues` lists every problem found."""

    def __init__(self, issues: list[Issue], source: str = "request") -> None:
        self.issues = issues
        self.source = source
        lines = "\n".join(f"  {issue}" for issue in issues)
        super().__init__(f"{source}: {len(issues)} problem(s)\n{lines}")


_FIELD_MESSAGE = re.compile(r"^([\w\[\].]+): (.+)$", re.S)
_PROBLEM_SEPARATOR = re.compile(r"; (?=[\w\[\].]+: )")


def pydantic_issues(exc: ValidationError) -> list[Issue]:
    """A pydantic error as issues with field paths, as users read them: a list that only
    looks short because its entries failed is not reported again, an unknown field says
    so, and cross-field checks name their own fields."""
    issues = []
    errors = exc.errors()
    for err in errors:
        if err["type"] == "too_short" and _has_nested_error(err["loc"], errors):
            continue  # the list only looks short because its entries failed: report those
        message = err["msg"].removeprefix("Value error, ")
        loc = format_loc(tuple(err["loc"]))
        if err["type"] == "extra_forbidden":
            issues.append(Issue(loc, "unknown field (check the spelling; see docs/requests.md)"))
            continue
        parts = _PROBLEM_SEPARATOR.split(message)  # a problem's text may itself hold "; "
        matches = [_FIELD_MESSAGE.match(part) for part in parts]
        if err["type"] == "value_error" and all(matches):
            # cross-field checks name their own fields, relative to the model that made them
            for match in matches:
                assert match is not None
                field, text = match.groups()
                path = field if loc == "(top level)" else f"{loc}.{field}"
                issues.append(Issue(path, text))
            continue
        issues.append(Issue(loc, message))
    return issues


def _has_nested_error(loc: tuple[int | str, ...], errors: list[Any]) -> bool:
    return any(len(e["loc"]) > len(loc) and tuple(e["loc"][: len(loc)]) == loc for e in errors)


def validate_order(
    raw: Any, reference: ReferenceData, *, now: datetime | None = None, source: str = "request"
) -> Order:
    """Validate `raw` (a dict) completely; raise InvalidRequest with every issue found."""
    if not isinstance(raw, dict):
        raise InvalidRequest([Issue("(top level)", "expected a JSON object")], source)
    try:
        order = Order.model_validate(raw)
    except ValidationError as exc:
        issues = pydantic_issues(exc)
        issues.extend(_reference_issues_raw(raw, reference))
        raise InvalidRequest(_dedupe(issues), source) from None
    issues = reference_issues(order, reference, now=now)
    if issues:
        raise InvalidRequest(issues, source)
    return order


def reference_issues(
    order: Order, reference: ReferenceData, *, now: datetime | None = None
) -> list[Issue]:
    """Problems of a schema-valid order against the reference data and the clock."""
    issues: list[Issue] = []
    now = now or datetime.now(UTC)
    issued = order.issued_at.date()
    if order.issued_at > now + MAX_CLOCK_SKEW:
        issues.append(Issue("issued_at", f"{order.issued_at.isoformat()} is in the future"))
    authority = reference.authorities.get(order.authority)
    if authority is None:
        issues.append(_unknown("authority", order.authority, reference.authorities))
    else:
        if authority.valid_until and issued > authority.valid_until:
            successor = f"; its successor is {authority.successor!r}" if authority.successor else ""
            issues.append(
                Issue(
                    "authority",
                    f"{authority.id!r} ({authority.name_en}) ceased on "
                    f"{authority.valid_until.isoformat()}, before issued_at{successor}",
                )
            )
        if authority.valid_from and issued < authority.valid_from:
            issues.append(
                Issue(
                    "authority",
                    f"{authority.id!r} exists only from {authority.valid_from.isoformat()}, "
                    "after issued_at",
                )
            )
    if order.platform not in reference.platforms:
        issues.append(_unknown("platform", order.platform, reference.platforms))
    for index, citation in enumerate(order.legal_bases):
        basis = reference.legal_bases.get(citation.basis)
        path = f"legal_bases[{index}].basis"
        if basis is None:
            issues.append(_unknown(path, citation.basis, reference.legal_bases))
            continue
        if basis.in_force_from and issued < basis.in_force_from:
            issues.append(
                Issue(path, f"{basis.instrument} is in force only from {basis.in_force_from}")
            )
        if basis.in_force_until and issued > basis.in_force_until:
            repl = f"; cite {basis.replaced_by!r} instead" if basis.replaced_by else ""
            issues.append(
                Issue(path, f"{basis.instrument} was no longer in force on issued_at{repl}")
            )
    policy = reference.sla_policies.get(order.sla_policy)
    if policy is None:
        issues.append(_unknown("sla_policy", order.sla_policy, reference.sla_policies))
    elif order.priority == "emergency" and not (policy.emergency or policy.demo):
        issues.append(
            Issue(
                "priority", f"an emergency request needs an emergency SLA policy, not {policy.id}"
            )
        )
    elif policy.emergency and order.priority != "emergency":
        issues.append(Issue("sla_policy", f"{policy.id} applies only to priority 'emergency'"))
    for index, item in enumerate(order.items):
        if item.category not in reference.categories:
            issues.append(_unknown(f"items[{index}].category", item.category, reference.categories))
    return issues


def _reference_issues_raw(raw: dict[str, Any], reference: ReferenceData) -> list[Issue]:
    """Reference checks that still make sense when the schema failed (best effort)."""
    issues: list[Issue] = []
    checks = (
        ("authority", reference.authorities),
        ("platform", reference.platforms),
        ("sla_policy", reference.sla_policies),
    )
    for field, known in checks:
        value = raw.get(field)
        if isinstance(value, str) and value and value not in known:
            issues.append(_unknown(field, value, known))
    items = raw.get("items")
    if isinstance(items, list):
        for index, item in enumerate(items):
            if isinstance(item, dict):
                category = item.get("category")
                if isinstance(category, str) and category not in reference.categories:
                    issues.append(
                        _unknown(f"items[{index}].category", category, reference.categories)
                    )
    bases = raw.get("legal_bases")
    if isinstance(bases, list):
        for index, citation in enumerate(bases):
            if isinstance(citation, dict):
                basis = citation.get("basis")
                if isinstance(basis, str) and basis not in reference.legal_bases:
                    issues.append(
                        _unknown(f"legal_bases[{index}].basis", basis, reference.legal_bases)
                    )
    return issues


def _unknown(path: str, value: str, known: Iterable[str]) -> Issue:
    return Issue(
        path, f"unknown {path.split('.')[-1]} {value!r}; known: {', '.join(sorted(known))}"
    )


def _dedupe(issues: list[Issue]) -> list[Issue]:
    return list(dict.fromkeys(issues))


# --- files ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawRequest:
    source: str  # "file.json" or "file.jsonl:3"
    data: Any


def read_request_file(path: Path) -> Iterator[RawRequest]:
    """One request per .json file (or a JSON array of them); one per line in .jsonl files.

    Raises InvalidRequest for a file that cannot be read (missing, unreadable, a name longer
    than the OS allows...), is too big, is not UTF-8 or JSON, or holds no request at all."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InvalidRequest(
                [Issue("(file)", f"{size} bytes is over the {MAX_FILE_BYTES} byte limit")],
                _shown(path),
            )
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest([Issue("(file)", f"not UTF-8: {exc}")], _shown(path)) from None
    except OSError as exc:
        problem = exc.strerror or str(exc)
        raise InvalidRequest([Issue("(file)", f"cannot read: {problem}")], _shown(path)) from None
    found = 0
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                found += 1
                yield RawRequest(f"{path}:{number}", _parse_json(line, f"{path}:{number}"))
    else:
        data = _parse_json(text, str(path))
        if isinstance(data, list):
            for index, entry in enumerate(data):
                found += 1
                yield RawRequest(f"{path}[{index}]", entry)
        else:
            found += 1
            yield RawRequest(str(path), data)
    if not found:
        raise InvalidRequest(
            [Issue("(file)", "holds no request (an empty array or file): nothing to do")],
            str(path),
        )


def _shown(path: Path, limit: int = 120) -> str:
    """The path as an error shows it: a name too long for the OS is cut, not printed whole."""
    text = str(path)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            [Issue("(file)", f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")],
            source,
        ) from None
    except RecursionError:
        raise InvalidRequest([Issue("(file)", "JSON is nested too deeply")], source) from None


# --- identity -------------------------------------------------------------------------------


def workflow_id_for(authority: str, reference: str) -> str:
    """`req-<authority>-<reference>` with only [a-z0-9-]: the Temporal UI breaks on / and :."""
    # Transliterate first (Đ -> d, ộ -> o): dropping letters would map different references
    # (e.g. "TTĐT" and "TTÂT") to the same id and so to the same run.
    text = unicodedata.normalize("NFKD", f"{authority}-{reference}".replace("Đ", "D"))
    text = "".join(c for c in text.replace("đ", "d") if not unicodedata.combining(c))
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not slug:
        raise ValueError("authority and reference give an empty workflow id")
    return f"req-{slug}"[:200].rstrip("-")


def fingerprint(order: Order) -> str:
    """SHA-256 of the order's canonical JSON: same request -> same fingerprint.

    Times are normalised to UTC first: 09:00+07:00 and 02:00Z are the same request."""
    data = order.model_dump(mode="json")
    data["issued_at"] = utc_iso(order.issued_at)
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
