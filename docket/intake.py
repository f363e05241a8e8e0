"""What a request's workflow accepts from outside, checked inside the workflow (pure).

Any Temporal client may start or drive an `AuthorityRequest`, so nothing it sends is taken on
trust. A request starts with a *signed submission* and every human command is a *signed
command* (docket.statement): the signature and the credential it carries are checked against
the operator's trust roots, the actor and their roles come from the credential (never from
the payload), and the command is bound to this request, this trigger, a short time window
and a single use (its nonce). The order is parsed by the same models as everywhere else, and
every reference it makes is resolved against the operator's reference data. Trust roots and
reference data reach the workflow through history (an activity), never through the caller.

A start input that fails is refused at once: the workflow fails with every problem and its
field path, and nothing is written to the audit log. A command that fails is refused by the
Update's validator: no history event, no audit entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from docket.case import RequestInput, Signature
from docket.credentials import Credential, IdentityError, TrustRoots
from docket.lifecycle import Role
from docket.models import Actor, Command, Order, parse_command
from docket.reference import ReferenceData
from docket.statement import SignedCommand, Statement, verify_command
from docket.validation import (
    Issue,
    fingerprint,
    pydantic_issues,
    reference_issues,
    workflow_id_for,
)


class TrustSnapshot(BaseModel):
    """The operator's trust roots as one activity read them, and how long a workflow may use
    them before it reads them again (a revocation reaches running requests within that)."""

    model_config = ConfigDict(frozen=True)

    trust: TrustRoots
    max_age_seconds: int

    @property
    def max_age(self) -> timedelta:
        return timedelta(seconds=self.max_age_seconds)


class Deployment(BaseModel):
    """What a new request is checked against: the operator's reference data and trust roots,
    and the earlier runs of its request id that were admitted (a request is filed once)."""

    model_config = ConfigDict(frozen=True)

    reference: ReferenceData
    trust: TrustSnapshot
    admitted_runs: tuple[str, ...] = ()


class CommandRefusal(Exception):
    """A signed command that cannot be accepted: `code` says why (an IdentityError code, or
    `invalid_command`, `not_for_this_request`), the message what would fix it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class StartRefused(Exception):
    """The start input cannot become a request; `issues` names every problem and where."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues = list(issues)
        lines = "; ".join(str(issue) for issue in self.issues)
        super().__init__(f"the request cannot start: {lines}")


def validation_issues(exc: ValidationError, prefix: str = "") -> list[Issue]:
    """A pydantic error as issues with field paths (under `prefix`), the same issues
    `starter.py validate` reports for the same data (docket.validation.pydantic_issues)."""
    issues = []
    for issue in pydantic_issues(exc):
        path = prefix.rstrip(".") if issue.path == "(top level)" and prefix else prefix + issue.path
        issues.append(Issue(path or "(top level)", issue.message))
    return issues


def parse_order(raw: Any, prefix: str = "order.") -> Order:
    """The order, or StartRefused with every schema problem."""
    if not isinstance(raw, Mapping):
        raise StartRefused([Issue(prefix.rstrip(".") or "(top level)", "expected an object")])
    try:
        return Order.model_validate(dict(raw))
    except ValidationError as exc:
        raise StartRefused(validation_issues(exc, prefix)) from None


def parse_signed(raw: Any, where: str = "") -> SignedCommand:
    """The wire form `{statement, signature}`, or CommandRefusal saying what is missing
    (`where`: what the message is about, e.g. "approve command")."""
    lead = f"{where}: " if where else ""
    if isinstance(raw, Mapping) and "statement" not in raw and "actor" in raw:
        raise CommandRefusal(
            "unsigned",
            f"{lead}unsigned: who acts is proven by a signature, not claimed in the payload "
            "(the `actor` field is not accepted); send {statement, signature} as made by "
            "`starter.py sign ...` or docket.client (docs/scripting.md)",
        )
    try:
        return SignedCommand.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(str(issue) for issue in validation_issues(exc))
        raise CommandRefusal(
            "unsigned",
            f"{lead}expected a signed command {{statement, signature}}: {problems}",
        ) from None


def actor_of(credential: Credential) -> Actor:
    """The actor a credential proves: its id, its roles, its organization's name."""
    return Actor(
        id=credential.actor_id,
        roles=credential.roles,
        organization=credential.organization_name,
    )


def signature_of(statement: Statement, signed: SignedCommand, credential: Credential) -> Signature:
    return Signature(
        statement=signed.statement,
        signature=signed.signature,
        nonce=statement.nonce,
        key_fingerprint=credential.key_fingerprint,
        ca_fingerprint=credential.ca_fingerprint,
        credential_serial=credential.serial,
        organization_id=credential.organization_id,
    )


def admit_command(
    trigger: str,
    signed: SignedCommand,
    trust: TrustRoots,
    *,
    request_id: str,
    parties: Sequence[tuple[str, str]],
    now: datetime,
) -> tuple[Command, Signature]:
    """A signed command as the lifecycle's command model, with its proof. `parties`: the
    request's (`authority`, id) and (`platform`, id): the signer's organization must act for
    one of them (or for any request). Raises CommandRefusal."""
    try:
        statement, credential = verify_command(
            signed, trust, now, request_id=request_id, trigger=trigger
        )
    except IdentityError as exc:
        raise CommandRefusal(exc.code, str(exc)) from None
    if not any(credential.may_act_for(kind, party) for kind, party in parties):  # type: ignore[arg-type]
        acting = ", ".join(f"{kind} {party}" for kind, party in parties)
        raise CommandRefusal(
            "not_for_this_request",
            f"{credential.described} acts for {', '.join(credential.acts_for)}, not for this "
            f"request ({acting})",
        )
    if "actor" in statement.payload:
        raise CommandRefusal(
            "invalid_command",
            "payload.actor: the actor is proven by the signature, not claimed in the payload",
        )
    try:
        command = parse_command(
            trigger, {**statement.payload, "actor": actor_of(credential).model_dump(mode="json")}
        )
    except ValidationError as exc:
        problems = "; ".join(str(issue) for issue in validation_issues(exc, "payload."))
        raise CommandRefusal("invalid_command", f"invalid {trigger} command: {problems}") from None
    return command, signature_of(statement, signed, credential)


def admit_submission(
    signed: SignedCommand,
    deployment: Deployment,
    *,
    workflow_id: str,
    now: datetime,
) -> tuple[RequestInput, Signature]:
    """A signed submission as the request a run needs, with the maker's proof. Raises
    StartRefused naming every problem (signature, order fields, references)."""
    if deployment.admitted_runs:
        raise StartRefused(
            [
                Issue(
                    "(workflow id)",
                    f"{workflow_id} was already filed (run {', '.join(deployment.admitted_runs)}): "
                    "a request is filed once, and its signed submission cannot start it again; "
                    "file a new request under a new reference",
                )
            ]
        )
    try:
        statement, credential = verify_command(
            signed, deployment.trust.trust, now, request_id=workflow_id, trigger="submit"
        )
    except IdentityError as exc:
        raise StartRefused([Issue("signature", f"{exc.code}: {exc}")]) from None
    extra = sorted(set(statement.payload) - {"order"})
    if extra:
        raise StartRefused(
            [Issue(f"payload.{extra[0]}", "unknown field (a submission holds `order`)")]
        )
    order = parse_order(statement.payload.get("order"), "payload.order.")
    if not credential.may_act_for("authority", order.authority):
        raise StartRefused(
            [
                Issue(
                    "payload.order.authority",
                    f"{credential.described} acts for {', '.join(credential.acts_for)}, "
                    f"not for the authority {order.authority!r}",
                )
            ]
        )
    request = resolve(
        order, actor_of(credential), deployment.reference, workflow_id=workflow_id, now=now
    )
    return request, signature_of(statement, signed, credential)


def resolve(
    order: Order,
    maker: Actor,
    reference: ReferenceData,
    *,
    workflow_id: str,
    now: datetime,
) -> RequestInput:
    """The request as a run needs it: the order with a snapshot of the operator's reference
    data it relies on. Raises StartRefused naming every problem: a reference the deployment
    does not know (or no longer in force), a maker who is not the order's officer, a workflow
    id that is not the one the order's authority and reference give."""
    issues = [
        Issue(f"payload.order.{issue.path}", issue.message)
        for issue in reference_issues(order, reference, now=now)
    ]
    if Role.OFFICER not in maker.roles:
        issues.append(
            Issue("submitted_by", f"{maker.id} cannot submit requests: needs the role officer")
        )
    if maker.id != order.officer:
        issues.append(
            Issue(
                "payload.order.officer",
                f"the order names {order.officer!r} as its officer but {maker.id!r} submitted "
                "it; the maker must submit their own request",
            )
        )
    expected_id = workflow_id_for(order.authority, order.reference)
    if workflow_id != expected_id:
        issues.append(
            Issue(
                "(workflow id)",
                f"{workflow_id!r} is not this order's request id {expected_id!r} "
                "(req-<authority>-<reference>: one run per request)",
            )
        )
    if issues:
        raise StartRefused(issues)
    vantages = (*(c for c in order.territorial_scope if c != "global"), "control")
    return RequestInput(
        request_id=workflow_id,
        order=order,
        submitted_by=maker,
        fingerprint=fingerprint(order),
        authority=reference.authorities[order.authority],
        platform=reference.platforms[order.platform],
        policy=reference.sla_policies[order.sla_policy],
        legal_bases=tuple(reference.legal_bases[c.basis] for c in order.legal_bases),
        categories=tuple(reference.categories[c] for c in order.categories),
        vantages=vantages,
    )
