"""The published contract, loaded for validation: which answers an operation may give, and
whether a body matches the schema documented for it (jsonschema, Draft 2020-12)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from docket.platform_openapi import openapi_document
from docket.platform_protocol import TIMESTAMP_PATTERN

_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """RFC 3339 with a zone (the contract's pattern) and a real calendar date."""
    if not isinstance(value, str):
        return True  # the type keyword speaks for non-strings
    if not _TIMESTAMP.match(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


@dataclass(frozen=True)
class Problem:
    """One place where a body departs from the contract."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@cache
def document() -> dict[str, Any]:
    """The contract (the same document the simulator serves and docs/ publishes)."""
    return openapi_document()


@cache
def _validator(name: str) -> Draft202012Validator:
    doc = document()
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    return Draft202012Validator(schema, format_checker=FORMATS)


def schema_validator(name: str) -> Draft202012Validator:
    """A validator for ``components.schemas[name]`` with the contract's date-time check."""
    return _validator(name)


def operation(method: str, path: str) -> dict[str, Any]:
    """The operation object for ``method`` on the templated ``path`` (e.g. /v1/requests)."""
    op: dict[str, Any] = document()["paths"][path][method.lower()]
    return op


def response_schema(method: str, path: str, status: int) -> str | None:
    """The schema name documented for that answer; KeyError if the status is undocumented."""
    responses = operation(method, path)["responses"]
    answer = responses[str(status)]
    ref = answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
    return None if ref is None else str(ref).rsplit("/", 1)[-1]


def documented_statuses(method: str, path: str) -> list[int]:
    return sorted(int(code) for code in operation(method, path)["responses"])


def _where(error: ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out or "(body)"


def _message(error: ValidationError) -> str:
    keyword = error.validator
    if keyword == "not" and isinstance(error.instance, str):
        return "contains a character the text policy refuses (control, bidi, invisible)"
    if keyword == "pattern":
        return f"{_short(error.instance)} does not match {error.validator_value}"
    if keyword == "format":
        return (
            f"{_short(error.instance)} is not an RFC 3339 date-time with Z or an offset "
            "(e.g. 2026-11-29T08:38:11Z, 2026-11-29T15:38:11+07:00)"
        )
    if keyword in ("if", "then", "allOf") and error.context:
        return "; ".join(_message(e) for e in error.context)
    return str(error.message)[:300]


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    if error.validator in ("allOf", "anyOf", "oneOf") and error.context:
        for sub in error.context:
            yield from _leaves(sub)
    else:
        yield error


def check_body(name: str, body: bytes | Any) -> list[Problem]:
    """Problems of ``body`` (raw JSON bytes or a parsed value) against schema ``name``."""
    if isinstance(body, bytes | bytearray):
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return [Problem("(body)", f"not JSON: {exc}")]
    else:
        value = body
    found: dict[str, tuple[int, str]] = {}  # one problem per place: the most telling one
    for error in sorted(_validator(name).iter_errors(value), key=lambda e: list(e.path)):
        for leaf in _leaves(error):
            rank = 0 if leaf.validator == "format" else 1
            where = _where(leaf)
            if where not in found or rank < found[where][0]:
                found[where] = (rank, _message(leaf))
    return [Problem(where, message) for where, (_, message) in found.items()]


__all__ = [
    "FORMATS",
    "Problem",
    "check_body",
    "document",
    "documented_statuses",
    "operation",
    "response_schema",
    "schema_validator",
]
