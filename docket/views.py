"""What people read about one request: the `status` query's answer and the markdown details
the Temporal UI shows. Pure functions of the case (the workflow publishes them)."""

from __future__ import annotations

from typing import Any

from docket.case import Case
from docket.lifecycle import allowed_triggers
from docket.models import utc_iso


def status_view(case: Case) -> dict[str, Any]:
    """State, deadlines, items (claim vs observation), appeals and the audit head."""
    facts = case.facts
    state = case.state
    request = case.request
    outcomes = case.item_outcomes()
    return {
        "request_id": case.request_id,
        "state": state.value if state else "submitting",
        "outcome": case.outcome.value if case.outcome else None,
        "allowed": list(allowed_triggers(state)) if state else [],
        "platform": request.platform.id,
        "authority": request.order.authority,
        "reference": request.order.reference,
        "sla_policy": request.policy.id,
        "ticket": facts.ticket,
        "due_at": utc_iso(facts.due_at) if facts.due_at else None,
        "sla_breached": facts.sla_breached,
        "items": [
            {
                "item_id": item.item_id,
                "url": item.url,
                "category": item.category,
                "claim": item.effect,
                "claim_by": item.claim_by,
                "observations": {v: o["observation"] for v, o in item.observations.items()},
                "verification": item.verification(facts.vantages),
                "outcome": outcomes[item.item_id],
            }
            for item in facts.items.values()
        ],
        "appeals": [vars(a) for a in facts.appeals],
        "delivery_error": facts.delivery_error,
        "info_question": facts.info_question,
        "audit": {"count": case.chain.sequence, "head_hash": case.chain.head_hash},
    }


def details_markdown(case: Case) -> str:
    """The request's current details for the Temporal UI (state, SLA, items, audit head)."""
    facts = case.facts
    state = case.current
    due = utc_iso(facts.due_at) if facts.due_at else "none"
    lines = [
        f"**State:** `{state.value}`"
        + (f" — outcome `{case.outcome.value}`" if case.outcome else ""),
        f"**SLA:** {case.request.policy.id}, due {due}"
        + (" — **breached**" if facts.sla_breached else ""),
        f"**Allowed now:** {', '.join(allowed_triggers(state)) or 'nothing'}",
        "",
        "| item | category | platform claim | our observation | outcome |",
        "|---|---|---|---|---|",
    ]
    outcomes = case.item_outcomes()
    for item in facts.items.values():
        seen = ", ".join(f"{v}: {o['observation']}" for v, o in item.observations.items())
        lines.append(
            f"| {item.item_id} | {item.category} | {item.effect or '-'} | {seen or '-'} "
            f"| {outcomes[item.item_id]} |"
        )
    lines += ["", f"**Audit:** {case.chain.sequence} entries, head `{case.chain.head_hash}`"]
    return "\n".join(lines)
