"""What an official signs: one canonical JSON statement per command (pure, sandbox-safe).

The statement is the canonical JSON text (``audit.canonical``: sorted keys, no spaces, UTF-8
as is) of::

    {"v": 1, "namespace": "docket-command@v1", "request_id": "req-mic-2026-0042",
     "trigger": "approve", "actor": "tran.thi.binh", "issued_at": "2026-03-02T09:00:00.000000Z",
     "nonce": "<32 lowercase hex>", "payload": {"reason": "..."}}

It binds the request (workflow id), the trigger, the whole payload (everything but the actor,
which the signature proves), when it was issued and a nonce that makes it single-use. The
wire form of a signed command is :class:`SignedCommand`: ``{"statement": <that text>,
"signature": <armored SSH signature over its UTF-8 bytes>}``. :func:`parse_statement` refuses
any text that is not exactly the canonical form, so the bytes that were signed are the bytes
that are stored and re-checked, with no second way to write the same statement.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from audit.canonical import CanonicalError, canonical
from docket.credentials import (
    ACTOR_ID_RE,
    NAMESPACE,
    Credential,
    IdentityError,
    TrustRoots,
    format_time,
    verify_signed,
)
from docket.sshsig import MAX_ARMORED_CHARS, quoted

__all__ = [
    "MAX_AGE",
    "MAX_AHEAD",
    "MAX_STATEMENT_CHARS",
    "STATEMENT_CODES",
    "STATEMENT_VERSION",
    "SignedCommand",
    "Statement",
    "StatementError",
    "build_statement",
    "format_issued_at",
    "parse_statement",
    "verify_command",
]

STATEMENT_VERSION = 1
# An order of 500 items with long URLs and reasons stays well under this; Temporal refuses
# payloads over 2 MB anyway.
MAX_STATEMENT_CHARS = 1_500_000
MAX_DEPTH = 32
# A signed command is accepted this long after it was issued (and this far ahead of the
# workflow's clock, for a signer whose clock runs fast). The nonce stops replays within it.
MAX_AGE = timedelta(minutes=15)
MAX_AHEAD = timedelta(minutes=2)

STATEMENT_CODES = (
    "malformed_statement",
    "actor_mismatch",
    "wrong_request",
    "wrong_trigger",
    "stale",
    "issued_in_future",
)

_ISSUED_AT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
_FIELDS = ("v", "namespace", "request_id", "trigger", "actor", "issued_at", "nonce", "payload")


class StatementError(IdentityError):
    """A statement that is not a valid canonical Docket statement (code ``malformed_statement``),
    or one that is valid but bound to something else (see :data:`STATEMENT_CODES`)."""

    def __init__(self, message: str, code: str = "malformed_statement") -> None:
        super().__init__(code, message)


def format_issued_at(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (the only form a statement accepts)."""
    if moment.tzinfo is None:
        raise ValueError("issued_at must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_issued_at(value: Any) -> datetime:
    if not isinstance(value, str) or not _ISSUED_AT_RE.match(value):
        raise ValueError("must be a UTC time written YYYY-MM-DDTHH:MM:SS.ffffffZ")
    try:
        moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{value!r} is not a real date and time") from None
    return moment


class Statement(BaseModel):
    """A parsed statement. ``text`` is the exact canonical text that was signed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1]
    namespace: Literal["docket-command@v1"]
    request_id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,254}$")]
    trigger: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{0,63}$")]
    actor: Annotated[str, StringConstraints(pattern=ACTOR_ID_RE.pattern)]
    issued_at: datetime
    nonce: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    payload: dict[str, Any]
    text: str = Field(exclude=True, repr=False)

    @property
    def message(self) -> bytes:
        """The signed bytes."""
        return self.text.encode("utf-8")


class SignedCommand(BaseModel):
    """The wire form of a signed command (an Update's input, the start input's signature)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    statement: Annotated[str, StringConstraints(max_length=MAX_STATEMENT_CHARS)]
    signature: Annotated[str, StringConstraints(max_length=MAX_ARMORED_CHARS)]


def _depth_error(value: Any) -> str | None:
    """The path of a value nested deeper than MAX_DEPTH, or None (iterative; the path is
    only built when there is one)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        if depth > MAX_DEPTH:
            return _path_deeper_than(value, MAX_DEPTH)
        children = item.values() if type(item) is dict else item if type(item) is list else ()
        for child in children:
            if type(child) is dict or type(child) is list:
                push((child, depth + 1))
    return None


def _path_deeper_than(value: Any, limit: int) -> str:
    return "$" + (_deep_path(value, limit) or "")


def _deep_path(value: Any, budget: int) -> str | None:
    """The path below ``value`` to a container more than ``budget`` levels down, or None."""
    if budget < 0:
        return ""
    is_dict = type(value) is dict
    for key, child in value.items() if is_dict else enumerate(value):
        if type(child) is dict or type(child) is list:
            found = _deep_path(child, budget - 1)
            if found is not None:
                return (f".{key}" if is_dict else f"[{key}]") + found
    return None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StatementError(f"the statement repeats the key {quoted(key)}")
        out[key] = value
    return out


def _refuse_constant(name: str) -> Any:
    raise StatementError(f"the statement contains {name}, which JSON does not allow")


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        path = "statement" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]
        )
        parts.append(f"{path}: {str(error['msg']).removeprefix('Value error, ')}")
    return "; ".join(parts)


def parse_statement(text: str) -> Statement:
    """Parse and check a statement. Refuses (StatementError, code ``malformed_statement``,
    naming the field) anything but the canonical text of a valid version-1 statement."""
    if not isinstance(text, str):
        raise StatementError(f"the statement must be text, not {type(text).__name__}")
    if len(text) > MAX_STATEMENT_CHARS:
        raise StatementError(
            f"the statement is {len(text)} characters; at most {MAX_STATEMENT_CHARS}"
        )
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except RecursionError:
        raise StatementError(f"the statement is nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise StatementError(
            f"the statement is not JSON: {exc.msg} at character {exc.pos}"
        ) from None
    if not isinstance(value, dict):
        raise StatementError("the statement must be a JSON object")
    deep = _depth_error(value)
    if deep is not None:
        raise StatementError(f"the statement is nested deeper than {MAX_DEPTH} levels at {deep}")
    try:
        expected = canonical(value).decode("utf-8")
    except CanonicalError as exc:
        raise StatementError(f"the statement has a value JSON cannot sign exactly: {exc}") from None
    if expected != text:
        at = next(
            (i for i, (a, b) in enumerate(zip(expected, text, strict=False)) if a != b),
            min(len(expected), len(text)),
        )
        raise StatementError(
            "the statement is not in canonical form (sorted keys, no spaces, UTF-8 characters "
            f"as is, no escapes beyond JSON's required ones): first difference at character {at}"
        )
    missing = [f for f in _FIELDS if f not in value]
    extra = sorted(set(value) - set(_FIELDS))
    if missing or extra:
        what = []
        if missing:
            what.append("missing " + ", ".join(missing))
        if extra:
            what.append("unknown " + ", ".join(quoted(k, 40) for k in extra[:5]))
        raise StatementError(f"the statement's fields: {'; '.join(what)}")
    if value["v"] != STATEMENT_VERSION or type(value["v"]) is not int:
        raise StatementError(
            f"statement.v: version {json.dumps(value['v'])[:20]} is not known (this Docket reads "
            f"version {STATEMENT_VERSION})"
        )
    if value["namespace"] != NAMESPACE:
        raise StatementError(
            f"statement.namespace: {quoted(str(value['namespace']))} is not {NAMESPACE!r}"
        )
    payload = value["payload"]
    if isinstance(payload, dict) and "actor" in payload:
        raise StatementError(
            "statement.payload.actor: not allowed; the actor is the statement's 'actor', "
            "proven by the signature"
        )
    try:
        issued_at = _parse_issued_at(value["issued_at"])
    except ValueError as exc:
        raise StatementError(f"statement.issued_at: {exc}") from None
    try:
        return Statement.model_validate(
            {**value, "issued_at": issued_at, "text": text}, strict=True
        )
    except ValidationError as exc:
        raise StatementError(_describe(exc)) from None


def build_statement(
    request_id: str,
    trigger: str,
    actor_id: str,
    payload: dict[str, Any],
    issued_at: datetime,
    nonce: str,
) -> str:
    """The canonical statement text for a command (checked by parsing it back)."""
    try:
        text = canonical(
            {
                "v": STATEMENT_VERSION,
                "namespace": NAMESPACE,
                "request_id": request_id,
                "trigger": trigger,
                "actor": actor_id,
                "issued_at": format_issued_at(issued_at),
                "nonce": nonce,
                "payload": payload,
            }
        ).decode("utf-8")
    except CanonicalError as exc:
        raise StatementError(f"the command cannot be signed exactly: {exc}") from None
    parse_statement(text)
    return text


def verify_command(
    command: SignedCommand,
    trust: TrustRoots,
    now: datetime,
    *,
    request_id: str,
    trigger: str,
    max_age: timedelta = MAX_AGE,
    max_ahead: timedelta = MAX_AHEAD,
) -> tuple[Statement, Credential]:
    """Everything about a signed command that needs no workflow state (pure): the statement
    is canonical, the signature and credential hold at ``now``, the signer is the statement's
    actor, and it is bound to this request and trigger and fresh. Seen nonces, roles and
    four-eyes rules are the workflow's to check. Raises IdentityError (or StatementError)."""
    statement = parse_statement(command.statement)
    credential = verify_signed(statement.message, command.signature, trust, now)
    if statement.actor != credential.actor_id:
        raise StatementError(
            f"the statement names actor {statement.actor!r} but is signed with the credential "
            f"of {credential.actor_id!r} (key {credential.key_fingerprint}): an actor signs "
            "only for themselves",
            "actor_mismatch",
        )
    if statement.request_id != request_id:
        raise StatementError(
            f"the command was signed for request {statement.request_id!r}, not {request_id!r}; "
            "sign a new command for this request",
            "wrong_request",
        )
    if statement.trigger != trigger:
        raise StatementError(
            f"the command was signed for {statement.trigger!r}, not {trigger!r}",
            "wrong_trigger",
        )
    if statement.issued_at < now - max_age:
        raise StatementError(
            f"the command was issued at {format_time(statement.issued_at)}, more than "
            f"{int(max_age.total_seconds() // 60)} minutes before {format_time(now)}; sign it "
            "again",
            "stale",
        )
    if statement.issued_at > now + max_ahead:
        raise StatementError(
            f"the command is dated {format_time(statement.issued_at)}, ahead of the workflow's "
            f"clock ({format_time(now)}); check the signing machine's clock",
            "issued_in_future",
        )
    return statement, credential
