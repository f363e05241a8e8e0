"""Who acted: every human entry's signature and credential, checked offline against a trust file.

Each human command (the submission included) is a statement signed with the actor's key; its
entry keeps the proof in its hashed body as ``docket.signed`` (the exact statement text, the
armored SSH signature, which carries the credential, and the key and CA fingerprints, the
credential's serial and the organization the workflow saw). This module checks, for every
entry, what the workflow checked when it accepted the command, at the entry's ``@timestamp``,
with the same code (``docket.statement.parse_statement``, ``docket.credentials.verify_signed``),
and that the entry says what was signed:

==================== =========================================================================
code                 meaning
==================== =========================================================================
unsigned_command     a human entry without ``docket.signed`` dated on or after the trust file's
                     ``signing_required_from``; or a person's command (approve, withdraw ...)
                     recorded as the system's or as a platform's API report
malformed_signature  ``docket.signed`` is not a readable proof (a field missing, not text, the
                     signature not in ssh-keygen's armor)
malformed_statement  the statement is not the canonical text of a valid statement
wrong_namespace      the signature was made for another purpose than ``docket-command@v1``
bad_signature        the signature does not match the statement (altered after signing, or
                     made with another key than the credential's)
not_a_certificate    signed with a bare key: no credential
unknown_key          the credential's CA is not in the trust file
credential_expired,  the credential was not valid at the entry's time
credential_not_yet_valid
key_revoked          the user key or the CA key was revoked at the entry's time (a revocation
                     with ``revoked_at`` applies from then on)
role_not_granted     the credential claims a role its organization may not grant, or the
                     entry's ``user.roles`` are not all in the credential
bad_credential       a credential Docket refuses (principals, no end date, unknown critical
                     option, actor outside the organization's ``actors``, altered certificate)
actor_mismatch       the statement names another actor than the credential's
signer_mismatch      the entry's record of the signer (``key_fingerprint``, ``ca_fingerprint``,
                     ``credential_serial``, ``organization_id``) is not the signature's
statement_mismatch   the statement's request_id / trigger / actor / issued_at / payload field
                     is not what the entry records (the message names the field)
action_not_permitted the proven roles may not give this command (e.g. a liaison's approve)
not_for_this_request the signer's organization does not act for the request's authority or
                     platform (as the signed submission names them)
four_eyes            the maker approved their own request, or a reviewer decided an appeal of a
                     decision they took part in (on proven identities)
replayed_command     the same signed command (nonce) recorded twice in one request
invalid_entry        a human entry whose ``@timestamp`` or ``user`` cannot be read, so its
                     signature cannot be judged at its time
==================== =========================================================================

Notes (informational): ``legacy_unsigned``, human entries dated before
``signing_required_from`` (requests that started before commands were signed), one note per
request. Entries by the system (``user.roles == ["system"]``, system triggers) and by a platform
through its API (``user.id`` = ``platform:<id>``) are not human commands and carry no signature.

Large logs are read in chunks in worker processes (like ``verify``); only human entries are
checked, and each credential is checked once per validity window (:class:`CredentialCache`):
an entry then costs its statement's parse and one signature check.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from audit.chain import chain_of_event_id
from audit.chunks import CHUNK_BYTES, Chunk, gc_paused, map_chunks, plan_chunks, read_lines
from audit.findings import Finding
from audit.lines import TAIL_MARK, inspect_line
from audit.progress import Progress
from audit.reader import Inputs, discover
from docket import sshsig
from docket.credentials import (
    IDENTITY_CODES,
    Credential,
    IdentityError,
    TrustRoots,
    check_certificate,
    format_time,
    verify_signed,
)
from docket.lifecycle import SYSTEM_TRIGGERS, TRIGGERS, Role, roles_for
from docket.models import (
    Acknowledge,
    DecideAppeal,
    FileAppeal,
    Order,
    ProvideInfo,
    ReportEffect,
    RequestInfo,
    parse_command,
    utc_iso,
)
from docket.statement import MAX_AHEAD, Statement, StatementError, parse_statement
from docket.validation import fingerprint

__all__ = [
    "NOTE_CODES",
    "SIGNATURE_CODES",
    "CredentialCache",
    "EntryCheck",
    "SignatureResult",
    "check_entry",
    "check_signatures",
    "check_signatures_paths",
]


def _identity_finding_code(code: str) -> str:
    """The finding code of a refusal by docket.credentials (`unsigned` names the entry)."""
    return "unsigned_command" if code == "unsigned" else code


# Every refusal docket.credentials can make, then what only the auditor's checks find.
SIGNATURE_CODES = (
    *(_identity_finding_code(code) for code in IDENTITY_CODES),
    "malformed_statement",
    "actor_mismatch",
    "signer_mismatch",
    "statement_mismatch",
    "action_not_permitted",
    "not_for_this_request",
    "four_eyes",
    "replayed_command",
    "invalid_entry",
)
NOTE_CODES = ("legacy_unsigned",)

SYSTEM_ROLES = [Role.SYSTEM.value]
PLATFORM_API_ROLES = [Role.PLATFORM_LIAISON.value]
# What each kind of entry is: a person's command (checked), or not a command at all.
SIGNED, LEGACY, UNSIGNED, SYSTEM, PLATFORM, INVALID = (
    "signed",
    "legacy",
    "unsigned",
    "system",
    "platform",
    "invalid",
)
_SHOWN = 160  # characters of a value shown in found/expected
_CACHE_LIMIT = 100_000  # certificates remembered per process (a hostile log may hold many)
_RECORDED = (
    ("key_fingerprint", str),
    ("ca_fingerprint", str),
    ("credential_serial", int),
    ("organization_id", str),
)

# (code, found, expected, message)
Problem = tuple[str, Any, Any, str]


def _shown(value: Any) -> Any:
    """A value for found/expected: as is if short, else its JSON cut short."""
    if value is None or isinstance(value, bool | int):
        return value
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


# --- credentials, checked once per validity window ---------------------------------------------


class CredentialCache:
    """Memoized :func:`docket.sshsig.parse_certificate` and
    :func:`docket.credentials.check_certificate` for one set of trust roots.

    A certificate's check depends on the time only through its validity window and the
    revocation times of its key and CA key. So a credential that passed at one time passes,
    with the same result, at any time inside ``[valid_after, min(valid_before, revoked_at))``;
    only such successes are remembered. Anything else (a failure, a time outside the window)
    is checked afresh by ``check_certificate`` itself, whose message names that time."""

    def __init__(self, trust: TrustRoots) -> None:
        self.trust = trust
        self._parsed: dict[bytes, sshsig.Certificate] = {}
        self._passed: dict[bytes, tuple[Credential, datetime, datetime]] = {}

    def parse(self, blob: bytes, what: str = "certificate") -> sshsig.Certificate:
        certificate = self._parsed.get(blob)
        if certificate is None:
            certificate = sshsig.parse_certificate(blob, what)
            if len(self._parsed) >= _CACHE_LIMIT:
                self._parsed.clear()
            self._parsed[blob] = certificate
        return certificate

    def check(
        self, certificate: sshsig.Certificate, trust: TrustRoots, now: datetime
    ) -> Credential:
        if trust is not self.trust:
            return check_certificate(certificate, trust, now)
        hit = self._passed.get(certificate.blob)
        if hit is not None and hit[1] <= now < hit[2]:
            return hit[0]
        credential = check_certificate(certificate, trust, now)
        until = credential.valid_before
        for fp in (credential.key_fingerprint, credential.ca_fingerprint):
            revocation = trust.revocation(fp)
            # it passed, so a revocation of either key has a time, after `now`
            if revocation is not None and revocation.revoked_at is not None:
                until = min(until, revocation.revoked_at)
        if len(self._passed) >= _CACHE_LIMIT:
            self._passed.clear()
        self._passed[certificate.blob] = (credential, credential.valid_after, until)
        return credential


# --- one entry ---------------------------------------------------------------------------------


@dataclass(slots=True)
class EntryCheck:
    """What one entry is (``kind``: signed, legacy, unsigned, system, platform, invalid) and
    what is wrong with it. For a signed entry: its statement's nonce, and the proven
    credential when the signature and credential hold."""

    kind: str
    action: str | None = None
    problems: list[Problem] = field(default_factory=list)
    nonce: str | None = None
    credential: Credential | None = None
    parties: tuple[str, str] | None = None  # a signed submission's (authority, platform)

    @property
    def human(self) -> bool:
        return self.kind in (SIGNED, LEGACY, UNSIGNED)


def _entry_time(value: Any) -> datetime | None:
    if type(value) is not str:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


def _allowed_roles(action: str) -> frozenset[Role]:
    """Roles that may give ``action`` (``submit``: the officer)."""
    if action == "submit":
        return frozenset({Role.OFFICER})
    return roles_for(action) if action in TRIGGERS else frozenset()


def check_entry(
    entry: Mapping[str, Any], trust: TrustRoots, cache: CredentialCache | None = None
) -> EntryCheck:
    """Check one entry (pure; the time is the entry's own ``@timestamp``). The chain-wide checks
    (replayed nonces, four-eyes, acting for the request) are :func:`check_signatures`'s."""
    event = entry.get("event")
    docket = entry.get("docket")
    user = entry.get("user")
    event = event if type(event) is dict else {}
    docket = docket if type(docket) is dict else {}
    action = event.get("action")
    action = action if type(action) is str else None
    signed = docket.get("signed")
    at = _entry_time(entry.get("@timestamp"))
    if signed is not None:
        return _check_signed(entry, signed, action, at, trust, cache)
    if type(user) is not dict or type(user.get("id")) is not str:
        return _invalid(action, "user.id", "who acted cannot be read")
    roles = user.get("roles")
    if type(roles) is not list or not roles or not all(type(r) is str for r in roles):
        return _invalid(action, "user.roles", "the roles cannot be read")
    actor: str = user["id"]
    if roles == SYSTEM_ROLES:
        kind, allowed = SYSTEM, action in SYSTEM_TRIGGERS
    elif actor.startswith("platform:") and roles == PLATFORM_API_ROLES:
        kind, allowed = PLATFORM, Role.PLATFORM_LIAISON in _allowed_roles(action or "")
    else:
        kind, allowed = UNSIGNED, False
    if kind != UNSIGNED and allowed:
        return EntryCheck(kind, action)
    if at is None:
        return _invalid(action, "@timestamp", "its time cannot be read")
    required = trust.signing_required_from
    if at < required:
        return EntryCheck(LEGACY if kind == UNSIGNED else kind, action)
    if kind == UNSIGNED:
        problem: Problem = (
            "unsigned_command",
            f"{action} by {actor} ({', '.join(roles)}), no docket.signed",
            f"a signed command (every human entry from {format_time(required)})",
            "this human command carries no signature although it is dated after "
            "signing_required_from: the workflow records none such; it was forged or its proof "
            "was removed (and the chain re-hashed); compare with the Temporal history "
            "(reconcile) and backups",
        )
    else:
        who = "the system" if kind == SYSTEM else f"{actor}'s API report"
        problem = (
            "unsigned_command",
            f"{action} recorded as {who}",
            f"{action} signed by a person ({', '.join(sorted(_allowed_roles(action or '')))})",
            f"{action} is a person's command, but this entry attributes it to {who} and carries "
            "no signature: no such entry is written by the workflow; treat it as forged and "
            "compare with the Temporal history (reconcile)",
        )
    return EntryCheck(UNSIGNED, action, [problem])


def _invalid(action: str | None, what: str, why: str) -> EntryCheck:
    return EntryCheck(
        INVALID,
        action,
        [
            (
                "invalid_entry",
                what,
                "a readable value",
                f"{why}, so its signature cannot be judged at its time: the entry was not "
                "written by Docket as it is; compare with backups and the Temporal history",
            )
        ],
    )


def _check_signed(
    entry: Mapping[str, Any],
    signed: Any,
    action: str | None,
    at: datetime | None,
    trust: TrustRoots,
    cache: CredentialCache | None,
) -> EntryCheck:
    check = EntryCheck(SIGNED, action)
    problems = check.problems
    if type(signed) is not dict:
        problems.append(_malformed("docket.signed", signed, "an object"))
        return check
    for name in ("statement", "signature"):
        if type(signed.get(name)) is not str:
            problems.append(_malformed(f"docket.signed.{name}", signed.get(name), "text"))
    if problems:
        return check
    for name, kind in _RECORDED:
        if type(signed.get(name)) is not kind:
            what = "text" if kind is str else "an integer"
            problems.append(_malformed(f"docket.signed.{name}", signed.get(name), what))
    if at is None:
        problems.append(_invalid(action, "@timestamp", "its time cannot be read").problems[0])
        return check
    text: str = signed["statement"]
    statement: Statement | None = None
    try:
        statement = parse_statement(text)
    except StatementError as exc:
        problems.append(
            (
                exc.code,
                _shown(text),
                "the canonical text of a version-1 statement",
                f"{exc}: the workflow accepts no such statement; the entry was altered after "
                "it was written",
            )
        )
    if statement is not None:
        check.nonce = statement.nonce
    credential: Credential | None = None
    try:
        if cache is not None:
            credential = verify_signed(
                text.encode("utf-8"),
                signed["signature"],
                trust,
                at,
                parse_certificate=cache.parse,
                check=cache.check,
            )
        else:
            credential = verify_signed(text.encode("utf-8"), signed["signature"], trust, at)
    except IdentityError as exc:
        problems.append(_identity_problem(exc, at))
    if credential is not None:
        _check_signer(check, entry, signed, statement, credential, action)
    if statement is not None:
        problems.extend(_binding_problems(statement, entry, at))
        if (
            statement.trigger == "submit"
            and credential is not None
            and not problems
            and type(order := statement.payload.get("order")) is dict
        ):
            authority, platform = order.get("authority"), order.get("platform")
            if type(authority) is str and type(platform) is str:
                check.parties = (authority, platform)
    return check


def _malformed(name: str, value: Any, expected: str) -> Problem:
    what = "missing" if value is None else f"{type(value).__name__}"
    return (
        "malformed_signature",
        f"{name}: {what}",
        f"{name}: {expected}",
        f"the entry's proof is unreadable ({name} is {what}); the workflow always records it "
        "whole: the entry was altered after it was written",
    )


_IDENTITY_ADVICE = {
    "unsigned": "the proof holds no signature: the entry was altered",
    "malformed_signature": "the signature cannot be read: the entry was altered",
    "wrong_namespace": "a signature made for another purpose was put in this entry",
    "bad_signature": "the statement (or the signature) was altered after signing, or signed "
    "with another key than the credential's: do not trust who this entry names",
    "not_a_certificate": "signed with a bare key, no credential",
    "unknown_key": "check that the trust file lists every organization's CA key, including "
    "retired ones (prefer revoking with revoked_at to deleting a key line)",
    "credential_expired": "the workflow refuses expired credentials: the entry was forged or "
    "the trust file differs from the deployment's",
    "credential_not_yet_valid": "the workflow refuses such credentials: the entry was forged or "
    "the trust file differs from the deployment's",
    "key_revoked": "signed after its key (or CA key) was revoked; if the revocation's "
    "revoked_at is later than the workflow learnt of it, ask the operator (see the refresh "
    "bound in docs/operations.md)",
    "role_not_granted": "the organization may not grant that role: the credential should "
    "never have been accepted",
    "bad_credential": "the workflow refuses such credentials: the entry was forged or the "
    "trust file differs from the deployment's",
}


def _identity_problem(exc: IdentityError, at: datetime) -> Problem:
    advice = _IDENTITY_ADVICE.get(exc.code, "")
    return (
        _identity_finding_code(exc.code),
        exc.code,
        f"a valid signature and credential at {format_time(at)} (the entry's time)",
        f"{exc.message}" + (f"; {advice}" if advice else ""),
    )


def _check_signer(
    check: EntryCheck,
    entry: Mapping[str, Any],
    signed: dict[str, Any],
    statement: Statement | None,
    credential: Credential,
    action: str | None,
) -> None:
    problems = check.problems
    if statement is not None and statement.actor != credential.actor_id:
        problems.append(
            (
                "actor_mismatch",
                f"statement actor {statement.actor}",
                f"the credential's actor {credential.actor_id}",
                f"the statement names {statement.actor!r} but is signed with the credential of "
                f"{credential.actor_id!r} (key {credential.key_fingerprint}): an actor signs "
                "only for themselves; the workflow refuses this",
            )
        )
    proven = {
        "key_fingerprint": credential.key_fingerprint,
        "ca_fingerprint": credential.ca_fingerprint,
        "credential_serial": credential.serial,
        "organization_id": credential.organization_id,
    }
    differing = sorted(k for k, v in proven.items() if k in signed and signed[k] != v)
    if differing:
        problems.append(
            (
                "signer_mismatch",
                {k: signed[k] for k in differing},
                {k: proven[k] for k in differing},
                f"the entry records a different signer ({', '.join(differing)}) than the "
                "signature carries: the record was altered, or the signature was replaced",
            )
        )
    user = entry.get("user")
    roles = user.get("roles") if type(user) is dict else None
    granted = {r.value for r in credential.roles}
    if type(roles) is not list or not set(map(str, roles)) <= granted:
        problems.append(
            (
                "role_not_granted",
                _shown(roles),
                sorted(granted),
                f"the entry names roles its signer's credential does not grant "
                f"({credential.described}): roles come from the credential only; the entry's "
                "roles were altered",
            )
        )
    if action is not None and not granted & {r.value for r in _allowed_roles(action)}:
        needed = ", ".join(sorted(r.value for r in _allowed_roles(action))) or "none"
        problems.append(
            (
                "action_not_permitted",
                f"{action} by {', '.join(sorted(granted))}",
                f"{action} by one of: {needed}",
                f"{credential.described} may not {action} (it needs one of: {needed}); the "
                "workflow refuses this command: the entry was forged with a genuine credential",
            )
        )
    check.credential = credential


# --- what the statement binds, against what the entry records ---------------------------------


def _binding_problems(
    statement: Statement, entry: Mapping[str, Any], at: datetime
) -> list[Problem]:
    event = _obj(entry.get("event"))
    docket = _obj(entry.get("docket"))
    user = _obj(entry.get("user"))
    pairs: list[tuple[str, str, Any, Any]] = [
        ("request_id", "docket.chain_id", statement.request_id, docket.get("chain_id")),
        ("trigger", "event.action", statement.trigger, event.get("action")),
        ("actor", "user.id", statement.actor, user.get("id")),
    ]
    if type(docket.get("chain_id")) is not str and type(event.get("id")) is str:
        pairs[0] = ("request_id", "event.id", statement.request_id, chain_of_event_id(event["id"]))
    problems = [
        _mismatch(field_name, where, signed, recorded)
        for field_name, where, signed, recorded in pairs
        if signed != recorded
    ]
    if statement.issued_at > at + MAX_AHEAD:
        problems.append(
            _mismatch(
                "issued_at",
                "@timestamp",
                format_time(statement.issued_at),
                format_time(at),
                "signed after the entry was recorded (the workflow accepts a command at most "
                f"{int(MAX_AHEAD.total_seconds() // 60)} minutes ahead of its clock)",
            )
        )
    problems.extend(
        _mismatch(f"payload.{name}", where, signed, recorded)
        for name, where, signed, recorded in _payload_pairs(statement, entry, at)
        if signed != recorded
    )
    return problems


def _mismatch(
    field_name: str, where: str, signed: Any, recorded: Any, why: str | None = None
) -> Problem:
    return (
        "statement_mismatch",
        _shown(recorded),
        _shown(signed),
        f"statement.{field_name} (signed) is not the entry's {where} (recorded): "
        + (
            why
            or "the entry was altered after signing, or a signature of another command was "
            "put in it"
        )
        + "; trust the signed value, compare with the Temporal history",
    )


_PLACEHOLDER_ROLES = ["auditor"]


def _payload_pairs(
    statement: Statement, entry: Mapping[str, Any], at: datetime
) -> list[tuple[str, str, Any, Any]]:
    """(payload field, entry field, signed value, recorded value) for everything a command's
    payload says that its entry records; an unreadable payload is one pair that differs."""

    event = _obj(entry.get("event"))
    docket = _obj(entry.get("docket"))
    payload = statement.payload
    if statement.trigger == "submit":
        extra = sorted(set(payload) - {"order"})
        if extra:
            return [(extra[0], "(nothing)", payload[extra[0]], None)]
        signed_order = payload.get("order")
        quick = signed_order_fingerprint(signed_order)
        if quick is not None and quick == _obj(docket.get("request")).get("fingerprint"):
            assert type(signed_order) is dict  # a fingerprint was computed
            return _order_pairs(signed_order, quick, entry, event, docket)
        try:
            order = Order.model_validate(signed_order)
        except ValidationError as exc:
            return [("order", "docket.request", _validation(exc), "an order the workflow accepts")]
        return _order_pairs(order.model_dump(mode="json"), fingerprint(order), entry, event, docket)
    actor = {"id": statement.actor, "roles": _PLACEHOLDER_ROLES, "organization": "-"}
    try:
        command = parse_command(statement.trigger, {**payload, "actor": actor})
    except ValidationError as exc:
        return [("(payload)", "(nothing)", _validation(exc), "a command the workflow accepts")]
    except ValueError as exc:
        return [("(trigger)", "event.action", str(exc), "a command the workflow accepts")]
    data = _obj(docket.get("data"))
    appeal = _obj(docket.get("appeal"))
    pairs: list[tuple[str, str, Any, Any]] = [
        ("reason", "event.reason", command.reason, event.get("reason"))
    ]
    if isinstance(command, Acknowledge) and command.acknowledged_at is not None:
        pairs.append(
            (
                "acknowledged_at",
                "docket.data.acknowledged_at",
                utc_iso(command.acknowledged_at),
                data.get("acknowledged_at"),
            )
        )
    elif isinstance(command, RequestInfo):
        pairs.append(("question", "docket.data.question", command.question, data.get("question")))
    elif isinstance(command, ProvideInfo):
        pairs.append(("answer", "docket.data.answer", command.answer, data.get("answer")))
    elif isinstance(command, ReportEffect):
        pairs += _effect_pairs(command.effects, docket.get("items"), utc_iso(at))
    elif isinstance(command, FileAppeal):
        pairs += [
            (
                "appellant_type",
                "docket.appeal.appellant_type",
                command.appellant_type,
                appeal.get("appellant_type"),
            ),
            (
                "target_items",
                "docket.appeal.target_items",
                list(command.target_items),
                appeal.get("target_items"),
            ),
            ("grounds", "docket.appeal.grounds", command.grounds, appeal.get("grounds")),
        ]
    elif isinstance(command, DecideAppeal):
        pairs.append(("outcome", "docket.appeal.outcome", command.outcome, appeal.get("outcome")))
        if command.outcome != "reversed":  # a full reversal reverses every appealed item
            pairs.append(
                (
                    "reversed_items",
                    "docket.appeal.reversed_items",
                    list(command.reversed_items),
                    appeal.get("reversed_items"),
                )
            )
    return pairs


def _obj(value: Any) -> dict[str, Any]:
    return value if type(value) is dict else {}


def _effect_pairs(
    effects: Sequence[Any], recorded: Any, entry_time: str
) -> list[tuple[str, str, Any, Any]]:
    if type(recorded) is not list or len(recorded) != len(effects):
        count = len(recorded) if type(recorded) is list else None
        return [("effects", "docket.items", f"{len(effects)} effects", f"{count} items")]
    pairs: list[tuple[str, str, Any, Any]] = []
    for i, (effect, item) in enumerate(zip(effects, recorded, strict=True)):
        item = item if type(item) is dict else {}
        signed: dict[str, Any] = {
            "item_id": effect.item_id,
            "effect": effect.effect,
            "restricted_in": list(effect.restricted_in),
            # without a time of its own, the effect is dated when the workflow recorded it
            "effect_at": utc_iso(effect.effect_at) if effect.effect_at else entry_time,
            "reason": effect.reason,
            "platform_ref": effect.platform_ref,
            "uploader_notified": effect.uploader_notified,
        }
        pairs += [
            (f"effects[{i}].{k}", f"docket.items[{i}].{k}", v, item.get(k))
            for k, v in signed.items()
        ]
    return pairs


def _order_pairs(
    order: Mapping[str, Any],
    order_fingerprint: str,
    entry: Mapping[str, Any],
    event: Mapping[str, Any],
    docket: Mapping[str, Any],
) -> list[tuple[str, str, Any, Any]]:
    """The pairs of a submission: ``order`` is the order's JSON form (as the workflow's model
    dumps it), ``order_fingerprint`` its fingerprint (docket.validation.fingerprint)."""
    request = _obj(docket.get("request"))
    pairs: list[tuple[str, str, Any, Any]] = [
        ("order", "docket.request.fingerprint", order_fingerprint, request.get("fingerprint")),
        (
            "order.statement_of_reasons",
            "event.reason",
            order.get("statement_of_reasons"),
            event.get("reason"),
        ),
        # the maker submits their own request (the workflow refuses anyone else)
        ("order.officer", "user.id", order.get("officer"), _obj(entry.get("user")).get("id")),
    ]
    items = order.get("items")
    items = items if type(items) is list else []
    issued_at = _entry_time(order.get("issued_at"))
    summary = {
        key: order.get(key)
        for key in (
            "authority",
            "reference",
            "platform",
            "territorial_scope",
            "sla_policy",
            "priority",
            "language",
            "channel",
        )
    }
    summary["item_count"] = len(items)
    # the request's categories are its items', in order of appearance (Order.categories)
    summary["categories"] = list(dict.fromkeys(_obj(item).get("category") for item in items))
    summary["issued_at"] = utc_iso(issued_at) if issued_at is not None else order.get("issued_at")
    bases = order.get("legal_bases")
    summary["legal_bases"] = [_obj(b).get("basis") for b in bases] if type(bases) is list else bases
    recorded_bases = request.get("legal_bases")
    recorded = {
        **request,
        "legal_bases": [_obj(b).get("basis") for b in recorded_bases]
        if type(recorded_bases) is list
        else recorded_bases,
    }
    pairs += [(f"order.{k}", f"docket.request.{k}", v, recorded.get(k)) for k, v in summary.items()]
    records = docket.get("items")
    if type(records) is not list or len(records) != len(items):
        count = len(records) if type(records) is list else None
        pairs.append(("order.items", "docket.items", f"{len(items)} items", f"{count} items"))
        return pairs
    for i, (item, record) in enumerate(zip(items, records, strict=True)):
        item, record = _obj(item), _obj(record)
        for k in ("item_id", "url", "category", "content_type", "reason"):
            pairs.append(
                (f"order.items[{i}].{k}", f"docket.items[{i}].{k}", item.get(k), record.get(k))
            )
    return pairs


def signed_order_fingerprint(order: Any) -> str | None:
    """``docket.validation.fingerprint`` of the order a statement carries, computed from its
    JSON as signed, without building the model: the same formula (the order's JSON, its
    ``issued_at`` in UTC, sorted keys, no spaces, UTF-8). It equals the recorded fingerprint
    only if the signed JSON *is* the model's JSON form (a client that signs
    ``order.model_dump(mode="json")``, as Docket's do), which then needs no validation to be
    compared field by field; otherwise (defaults left out, another spelling) the caller
    validates the order and fingerprints the model. None if it cannot be computed."""
    if type(order) is not dict:
        return None
    moment = _entry_time(order.get("issued_at"))
    if moment is None:
        return None
    try:
        # orjson writes what json.dumps(sort_keys=True, separators=(",", ":"),
        # ensure_ascii=False) writes for an order's values; where it would not, the fingerprint
        # differs and the caller takes the model's way: never a false match
        body = orjson.dumps({**order, "issued_at": utc_iso(moment)}, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError: e.g. an integer beyond 64 bits
        return None
    return hashlib.sha256(body).hexdigest()


def _validation(exc: Any) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"


# --- the whole log -----------------------------------------------------------------------------


@dataclass(slots=True)
class SignatureResult:
    """What :func:`check_signatures` found: counts over distinct human entries, findings and
    the ``legacy_unsigned`` notes (one per request)."""

    trust_digest: str
    signing_required_from: datetime
    human: int = 0  # distinct human entries (identical copies of a retried write count once)
    signed: int = 0  # ... carrying docket.signed (each checked)
    verified: int = 0  # ... of which every check passed
    legacy: int = 0  # unsigned, dated before signing_required_from
    unsigned: int = 0  # unsigned, dated on or after it (each a finding)
    findings: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def checked(self) -> int:
        """Human entries judged: every signed one, and every unsigned one from
        signing_required_from on (legacy entries are only counted)."""
        return self.signed + self.unsigned

    def by_code(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for f in self.findings:
            counts[f.code] = counts.get(f.code, 0) + 1
        return {code: counts[code] for code in SIGNATURE_CODES if code in counts}

    def summary(self) -> dict[str, Any]:
        return {
            "status": "OK" if self.ok else "FAILED",
            "trust_digest": self.trust_digest,
            "signing_required_from": format_time(self.signing_required_from),
            "human_entries": self.human,
            "checked": self.checked,
            "signed": self.signed,
            "verified": self.verified,
            "legacy_unsigned": self.legacy,
            "unsigned": self.unsigned,
            "findings": len(self.findings),
            "findings_by_code": self.by_code(),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "findings": [f.to_dict() for f in self.findings],
            "notes": [n.to_dict() for n in self.notes],
        }

    def render_summary(self) -> str:
        s = self.summary()
        text = (
            f"signatures {s['status']}: {s['checked']} human entries checked ({s['signed']} "
            f"signed, {s['verified']} verified), {s['legacy_unsigned']} legacy unsigned (before "
            f"{s['signing_required_from']}), trust {self.trust_digest[:19]}…, "
            f"{s['findings']} findings"
        )
        if s["findings"]:
            text += " (" + ", ".join(f"{k}={v}" for k, v in s["findings_by_code"].items()) + ")"
        return text


# A human (or misattributed) entry as a chunk scan reports it:
# (chain id, sequence, stored hash, line within the chunk, check)
_Record = tuple[str, int, str, int, EntryCheck]


@dataclass(slots=True)
class _Scan:
    file_idx: int
    nlines: int
    records: list[_Record]


_CACHES: dict[str, CredentialCache] = {}


def _cache_for(trust: TrustRoots) -> CredentialCache:
    """One cache per trust roots per process (kept across the chunks a worker scans)."""
    cache = _CACHES.get(trust.digest)
    if cache is None:
        _CACHES.clear()
        cache = _CACHES[trust.digest] = CredentialCache(trust)
    return cache


def _scan(chunk: Chunk, trust: TrustRoots) -> _Scan:
    with gc_paused():
        return _scan_lines(read_lines(chunk), chunk.file_idx, _cache_for(trust))


_SIGNED_KEY = b'"signed"'
_USER_AT = b',"user":{'
_EVENT_AT = b',"event":{'
_MESSAGE_AT = b',"message":"'
_ESCAPE = b"\\u"
_BY_API = frozenset(t for t in TRIGGERS if Role.PLATFORM_LIAISON in roles_for(t))


def _not_a_command(raw: bytes) -> bool:
    """True if a stored line is, without parsing all of it, an entry by the system (with a
    system trigger) or by a platform's API (with a trigger platforms answer) that carries no
    ``docket.signed``: there is nothing to check. Most lines of a log are such.

    In the stored layout (``audit.lines``) the body's keys are sorted, so its last members are
    ``"event"``, ``"message"``, ``"organization"`` and ``"user"``: the ``user`` object ends where
    the chain fields begin, and ``event`` ends where ``message`` begins. Each slice must parse
    as exactly one JSON object, which a nested look-alike never does (its enclosing object's
    closing brace follows it). Anything else (a ``\\u`` escape that could spell a key, another
    layout, whitespace) is simply parsed whole, so a line is never skipped on a guess: at
    worst it costs a full parse."""
    if _SIGNED_KEY in raw or _ESCAPE in raw:
        return False
    k = raw.rfind(TAIL_MARK)
    u = raw.rfind(_USER_AT, 0, k) if k > 0 else -1
    e = raw.rfind(_EVENT_AT, 0, u) if u > 0 else -1
    m = raw.find(_MESSAGE_AT, e) if e > 0 else -1
    if m < 0 or m > u:
        return False
    try:
        user = orjson.loads(raw[u + len(_USER_AT) - 1 : k])
        event = orjson.loads(raw[e + len(_EVENT_AT) - 1 : m])
    except orjson.JSONDecodeError:
        return False
    if type(user) is not dict or type(event) is not dict:
        return False
    roles, actor, action = user.get("roles"), user.get("id"), event.get("action")
    if roles == SYSTEM_ROLES:
        return action in SYSTEM_TRIGGERS
    return (
        roles == PLATFORM_API_ROLES
        and type(actor) is str
        and actor.startswith("platform:")
        and action in _BY_API
    )


def _scan_lines(lines: list[bytes], file_idx: int, cache: CredentialCache) -> _Scan:
    """Check every complete line's entry (``lines`` as ``bytes.split(b"\\n")`` gives them; the
    last element, a torn tail or b"", was never acknowledged and is not read). Lines that are
    not entries are ``verify``'s to report."""
    torn = lines.pop()
    trust = cache.trust
    records: list[_Record] = []
    loads = orjson.loads
    skip = _not_a_command
    for lno, raw in enumerate(lines, 1):
        if skip(raw):
            continue
        try:
            e = loads(raw)
        except orjson.JSONDecodeError:
            e = inspect_line(raw).entry  # a non-canonical line (CRLF, BOM ...) still counts
        if type(e) is not dict:
            continue
        ev = e.get("event")
        d = e.get("docket")
        if type(ev) is not dict:
            continue
        seq = ev.get("sequence")
        cid = d.get("chain_id") if type(d) is dict else None
        eid = ev.get("id")
        if cid is None and type(eid) is str:
            cid = chain_of_event_id(eid)
        digest = e.get("hash")
        if (
            type(cid) is not str
            or type(seq) is not int
            or eid != f"{cid}:{seq}"
            or type(digest) is not str
        ):
            continue  # verify reports it (invalid_entry); it has no place in a chain
        check = check_entry(e, trust, cache)
        if check.human or check.problems:
            records.append((cid, seq, digest, lno, check))
    return _Scan(file_idx, len(lines) + (1 if torn else 0), records)


def check_signatures_paths(
    paths: Iterable[str | os.PathLike[str]],
    trust: TrustRoots,
    *,
    jobs: int | None = None,
    progress: Progress | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> SignatureResult:
    """:func:`check_signatures` on every segment under ``paths``."""
    return check_signatures(
        discover(paths), trust, jobs=jobs, progress=progress, chunk_bytes=chunk_bytes
    )


def check_signatures(
    inputs: Inputs,
    trust: TrustRoots,
    *,
    jobs: int | None = None,
    progress: Progress | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> SignatureResult:
    """Check every human entry of the segments ``inputs`` names against ``trust``.

    ``jobs``: worker processes (default: all CPUs when the log is large, as ``verify``).
    Segments that cannot be read are ``verify``'s findings (``unreadable``); they are skipped
    here. Identical copies of an entry (a retried write) are checked and counted once."""
    result = SignatureResult(trust.digest, trust.signing_required_from)
    files: list[Path] = []
    chunks: list[Chunk] = []
    for path in inputs.files:
        try:
            planned = plan_chunks([path], chunk_bytes)
        except OSError:
            continue  # verify reports it
        idx = len(files)
        files.append(path)
        chunks += [Chunk(idx, c.path, c.start, c.end, c.last) for c in planned]
    if progress is not None:
        progress.start(sum(c.size for c in chunks), "signatures")
    scans: list[_Scan] = []
    try:
        for s in map_chunks(
            partial(_scan, trust=trust),
            chunks,
            jobs=jobs,
            progress=progress.advance if progress is not None else None,
        ):
            scans.append(s)
    finally:
        if progress is not None:
            progress.finish()
    _merge(result, files, scans)
    return result


def _merge(result: SignatureResult, files: Sequence[Path], scans: Sequence[_Scan]) -> None:
    """Counts over distinct entries, each entry's findings, then the chain-wide checks."""
    line_base: list[int] = []
    per_file: dict[int, int] = {}
    for s in scans:
        base = per_file.get(s.file_idx, 0)
        line_base.append(base)
        per_file[s.file_idx] = base + s.nlines
    chains: dict[str, list[tuple[int, str, int, EntryCheck]]] = {}
    seen: set[tuple[str, int, str]] = set()
    for si, s in enumerate(scans):
        path = str(files[s.file_idx])
        for cid, seq, digest, lno, check in s.records:
            key = (cid, seq, digest)
            if key in seen:
                continue  # an identical copy (verify counts it as a duplicate dropped)
            seen.add(key)
            chains.setdefault(cid, []).append((seq, path, line_base[si] + lno, check))
    findings = result.findings
    for cid in sorted(chains):
        records = sorted(chains[cid], key=lambda r: (r[0], r[1], r[2]))
        legacy: list[int] = []
        for seq, path, line, check in records:
            if check.kind == SIGNED:
                result.signed += 1
                result.verified += not check.problems
            elif check.kind == LEGACY:
                result.legacy += 1
                legacy.append(seq)
            elif check.kind == UNSIGNED:
                result.unsigned += 1
            result.human += check.human
            findings += (
                Finding(code, message, cid, seq, path, line, found, expected)
                for code, found, expected, message in check.problems
            )
        _chain_checks(findings, cid, records)
        if legacy:
            shown = ", ".join(map(str, legacy[:10])) + (" ..." if len(legacy) > 10 else "")
            seq, path, line, _ = next(r for r in records if r[3].kind == LEGACY)
            result.notes.append(
                Finding(
                    "legacy_unsigned",
                    f"{len(legacy)} human entries of this request are dated before "
                    f"signing_required_from ({format_time(result.signing_required_from)}): "
                    "the request started before commands were signed; who acted is what the "
                    "workflow recorded, not proven by a signature. Not a finding",
                    cid,
                    seq,
                    path,
                    line,
                    f"{len(legacy)} unsigned (sequences {shown})",
                    f"signed from {format_time(result.signing_required_from)}",
                )
            )
    findings.sort(key=finding_order)


def finding_order(f: Finding) -> tuple[str, int, str, int, str]:
    """The order ``verify`` prints findings in: by request, sequence, file, line, code."""
    return (
        f.chain_id or "",
        f.sequence if f.sequence is not None else -1,
        f.file or "",
        f.line or 0,
        f.code,
    )


def _chain_checks(
    findings: list[Finding], cid: str, records: Sequence[tuple[int, str, int, EntryCheck]]
) -> None:
    """Within one request, on proven identities only: each signed command used once, the
    signers act for the request's authority or platform, four eyes on approval and appeal."""
    nonces: dict[str, int] = {}
    parties: tuple[str, str] | None = None
    maker = approver = appellant = None
    for seq, path, line, check in records:
        if check.kind != SIGNED:
            continue
        if check.nonce is not None:
            first = nonces.setdefault(check.nonce, seq)
            if first != seq:
                findings.append(
                    Finding(
                        "replayed_command",
                        f"this entry's signed command (nonce {check.nonce}) was already "
                        f"recorded at sequence {first}: a signed command counts once and the "
                        "workflow refuses a nonce it has seen; this copy was replayed into the "
                        "log (and the chain re-hashed)",
                        cid,
                        seq,
                        path,
                        line,
                        f"nonce {check.nonce} at sequences {first} and {seq}",
                        "each nonce once per request",
                    )
                )
        credential = check.credential
        if credential is None or check.problems:
            continue
        actor = credential.actor_id
        if check.action == "submit":
            parties, maker = check.parties, actor
            continue
        if parties is not None and not (
            credential.may_act_for("authority", parties[0])
            or credential.may_act_for("platform", parties[1])
        ):
            findings.append(
                Finding(
                    "not_for_this_request",
                    f"{credential.described} acts for {', '.join(credential.acts_for)}, not "
                    f"for this request (authority {parties[0]}, platform {parties[1]}, as its "
                    "signed submission says): the workflow refuses such a command",
                    cid,
                    seq,
                    path,
                    line,
                    f"acts for {', '.join(credential.acts_for)}",
                    f"authority:{parties[0]} or platform:{parties[1]}",
                )
            )
        conflicted: tuple[str, ...] = ()
        if check.action == "approve":
            conflicted = ("maker",) if actor == maker else ()
            approver = actor
        elif check.action == "file_appeal":
            appellant = actor
        elif check.action == "decide_appeal":
            conflicted = tuple(
                role
                for role, who in (
                    ("maker", maker),
                    ("approver", approver),
                    ("appellant", appellant),
                )
                if who == actor
            )
        if conflicted:
            findings.append(
                Finding(
                    "four_eyes",
                    f"{actor} ({check.action}) is also this request's {', '.join(conflicted)} "
                    "(proven by their signatures): the workflow refuses a decision on one's own "
                    "request or appeal, whatever key signs it",
                    cid,
                    seq,
                    path,
                    line,
                    f"{check.action} by {actor}",
                    f"someone other than the {', '.join(conflicted)}",
                )
            )
