"""What a request's workflow accepts at its start, checked inside the workflow (pure).

Any Temporal client may start an `AuthorityRequest`, so nothing the start input says is taken
on trust: it is parsed by the same models as everywhere else, and every reference it makes
(authority, platform, legal bases, categories, SLA policy) is resolved against the operator's
reference data, which reaches the workflow through history (an activity), never through the
caller. A start input that fails is refused at once: the workflow fails with every problem
and its field path, and nothing is written to the audit log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from docket.case import RequestInput
from docket.lifecycle import Role
from docket.models import Actor, Order
from docket.reference import ReferenceData, format_loc
from docket.validation import Issue, fingerprint, reference_issues, workflow_id_for


class StartRefused(Exception):
    """The start input cannot become a request; `issues` names every problem and where."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues = list(issues)
        lines = "; ".join(str(issue) for issue in self.issues)
        super().__init__(f"the request cannot start: {lines}")


def validation_issues(exc: ValidationError, prefix: str = "") -> list[Issue]:
    """A pydantic error as issues with field paths (under `prefix`)."""
    issues = []
    for err in exc.errors():
        loc = format_loc(tuple(err["loc"]))
        path = prefix if loc == "(top level)" and prefix else f"{prefix}{loc}"
        issues.append(Issue(path or "(top level)", err["msg"].removeprefix("Value error, ")))
    return issues


def parse_order(raw: Any, prefix: str = "order.") -> Order:
    """The order, or StartRefused with every schema problem."""
    if not isinstance(raw, Mapping):
        raise StartRefused([Issue(prefix.rstrip(".") or "(top level)", "expected an object")])
    try:
        return Order.model_validate(dict(raw))
    except ValidationError as exc:
        raise StartRefused(validation_issues(exc, prefix)) from None


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
        Issue(f"order.{issue.path}", issue.message)
        for issue in reference_issues(order, reference, now=now)
    ]
    if Role.OFFICER not in maker.roles:
        issues.append(
            Issue("submitted_by", f"{maker.id} cannot submit requests: needs the role officer")
        )
    if maker.id != order.officer:
        issues.append(
            Issue(
                "order.officer",
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
