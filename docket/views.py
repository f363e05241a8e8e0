"""What people read about one request, and where officials find requests in the Temporal UI.

- `status_view(case)`: the `status` query's answer (CLI, scripts).
- `details_markdown(case, now=...)`: the markdown the workflow publishes with
  `workflow.set_current_details` on every transition. Written for the UI's half-width
  "Current Details" pane (Temporal UI 2.54): no tables (that renderer gives cells no padding),
  one short line per fact, deadlines with the time left or overdue "as of" the transition, SLA
  breaches kept after closing, and each item's verification, so that a removal our probes
  never confirmed never reads as done. The request's own facts (authority, reference, bases)
  are included, so a request started by any client reads the same (static summary and
  details exist only when the starting client sets them).
- `saved_views(ui_base_url, namespace)`: the list views officials need, as visibility
  queries and ready-made UI links.

Pure functions of the case (safe in the workflow sandbox: no I/O, no clock; `now` comes in).
Every value that comes from people or platforms goes through `_md`, which is
`docket.text.markdown_text` plus what the UI's renderer would still turn into something else.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from docket.case import Case, ItemRecord, Verification
from docket.lifecycle import Outcome, State, allowed_triggers
from docket.models import GONE_CLAIMS, utc_iso
from docket.text import markdown_text
from docket.verification import INCONCLUSIVE, UNREACHABLE, Observation

# At most this many items are listed (an order may hold 500); the count line covers all.
MAX_LISTED_ITEMS = 25
# Free text (reasons, questions, errors) is cut to this many characters in the details.
MAX_TEXT = 90

# --- the status query -----------------------------------------------------------------------


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
        # every deadline missed, kept after the clock stopped (a closed request too)
        "sla_breaches": [
            {"deadline": b.deadline, "expired_at": utc_iso(b.expired_at)}
            for b in sla_breaches(case)
        ],
        "items": [
            {
                "item_id": item.item_id,
                "url": item.url,
                "category": item.category,
                "claim": item.effect,
                "claim_by": item.claim_by,
                "observations": {v: o["observation"] for v, o in item.observations.items()},
                "verification": facts.verdict(item),
                "outcome": outcomes[item.item_id],
            }
            for item in facts.items.values()
        ],
        "appeals": [vars(a) for a in facts.appeals],
        "delivery_error": facts.delivery_error,
        "platform_problem": facts.platform_problem,
        "info_question": facts.info_question,
        "audit": {"count": case.chain.sequence, "head_hash": case.chain.head_hash},
    }


# --- SLA breaches ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Breach:
    """A deadline the platform missed: which one ("respond", "second_notice", "effect")."""

    deadline: str
    expired_at: datetime


def sla_breaches(case: Case) -> list[Breach]:
    """Every SLA deadline the platform missed, from the request's own audit entries (the
    facts keep only the running clock, which stops when the request moves on or closes)."""
    breaches = []
    for entry in case.timeline:
        if entry["event"]["action"] != "sla_expired":
            continue
        data = entry["docket"].get("data") or {}
        deadline = _DEADLINE_OF.get(entry["docket"].get("from_state"), "respond")
        expired = data.get("expired_at") or entry["@timestamp"]
        breaches.append(Breach(deadline, datetime.fromisoformat(expired)))
    return breaches


# Which deadline an SLA expiry in each state was (the workflow's SLA timers).
_DEADLINE_OF = {
    State.AWAITING_ACK.value: "respond",
    State.SECOND_NOTICE.value: "second_notice",
    State.ACKNOWLEDGED.value: "effect",
}


# --- the details pane -----------------------------------------------------------------------

_STATE_TITLES: Mapping[State, tuple[str, str]] = {
    State.PENDING_APPROVAL: ("Pending approval", "Waiting for an approver other than the maker."),
    State.DELIVERING: ("Delivering", "Sending the order to {platform}."),
    State.DELIVERY_FAILED: (
        "Delivery failed",
        "The order did not reach {platform}; an operator may retry or the authority withdraw.",
    ),
    State.AWAITING_ACK: ("Awaiting acknowledgment", "Waiting for {platform} to acknowledge."),
    State.SECOND_NOTICE: (
        "Second notice sent",
        "{platform} did not acknowledge in time; a second notice was sent.",
    ),
    State.UNRESPONSIVE: (
        "Unresponsive",
        "{platform} answered neither notice; the authority may escalate or withdraw.",
    ),
    State.ACKNOWLEDGED: ("Acknowledged", "Waiting for {platform}'s decision on each item."),
    State.OVERDUE: ("Overdue", "{platform} acknowledged but missed the deadline to decide."),
    State.INFO_REQUESTED: (
        "Information requested",
        "{platform} asked a question; its clock is paused until the authority answers.",
    ),
    State.VERIFYING: ("Verifying", "Our probes are checking what {platform} reported."),
    State.DISPUTED: (
        "Disputed",
        "{platform} reports removals our probes contradict; an operator may re-notify or close.",
    ),
    State.MONITORING: ("Monitoring", "Removals are re-checked; the decision may be appealed."),
    State.DECLINED: ("Declined", "{platform} removed nothing; the authority may appeal."),
    State.APPEALED: ("Appeal pending", "Waiting for a reviewer who took no part in the decision."),
    State.REINSTATING: (
        "Reinstating",
        "The appeal reversed a removal; waiting to see the content back.",
    ),
    State.WITHDRAWING: (
        "Withdrawing",
        "The authority withdrew the request; {platform} is being told (closed once it accepts).",
    ),
}

_OUTCOME_TEXT: Mapping[Outcome, str] = {
    Outcome.REJECTED: "The approver rejected the request; nothing was sent.",
    Outcome.WITHDRAWN: "The authority withdrew the request.",
    Outcome.UNRESPONSIVE: "{platform} never answered; the authority escalated.",
    Outcome.COMPLIED: "Every item removed or restricted, confirmed by our probes.",
    Outcome.COMPLIED_UNVERIFIED: (
        "{platform} reports every item removed, but our probes did not confirm all of them."
    ),
    Outcome.PARTIALLY_COMPLIED: "Some items removed; others declined or not acted on.",
    Outcome.DECLINED: "{platform} declined and no appeal reversed it.",
    Outcome.DISPUTED: "Closed with {platform}'s report and our probes in disagreement.",
    Outcome.REVERSED_ON_APPEAL: "An appeal reversed the decision; the content is back.",
}

_BREACH_TEXT = {
    "respond": "no acknowledgment by",
    "second_notice": "no answer to the second notice by",
    "effect": "no decision by",
}

# The running clock's meaning in each state that has one.
_CLOCK_LABEL = {
    State.AWAITING_ACK: "Acknowledge by",
    State.SECOND_NOTICE: "Answer the second notice by",
    State.ACKNOWLEDGED: "Decide by",
    State.INFO_REQUESTED: "Decide by",
}

_MARK = {"confirmed": "✓", "unverified": "?", "contradicted": "✗"}
_VERDICT = {
    Verification.CONFIRMED: "✓ confirmed",
    Verification.UNVERIFIED: "? unverified",
    Verification.CONTRADICTED: "✗ contradicted",
}


def details_markdown(
    case: Case,
    *,
    now: datetime | None = None,
    next_deadline: tuple[datetime, str] | None = None,
) -> str:
    """The request's current details for the Temporal UI.

    Deadlines say how long is left or how long overdue "as of" `now` (the workflow's time when
    it publishes them, `workflow.now()`), or, without `now`, as of the request's last audit
    entry (the transition that made these details). `next_deadline`:
    the workflow's next timer (when, and what, e.g. "appeal window ends") for states whose
    deadline the case itself does not hold (monitoring, declined).

    Layout: a heading with the state, then one paragraph whose lines the UI keeps apart (its
    renderer sets `white-space: pre-line`), in blocks separated by a line holding a no-break
    space: a blank line would start a new paragraph, which the UI spaces out over two lines.

    The workflow calls this on every transition: a value it cannot render (say, in an entry
    written by older code) gives a short notice instead of an exception, which would fail the
    workflow task over and over for something only displayed.
    """
    state = case.current
    try:
        return _details(case, state, now, next_deadline)
    except Exception as exc:
        return (
            f"### {_words(state.value).capitalize()}\n"
            f"These details could not be rendered ({type(exc).__name__}); the `status` query "
            "and the audit log hold the request's facts."
        )


def _details(
    case: Case,
    state: State,
    now: datetime | None,
    next_deadline: tuple[datetime, str] | None,
) -> str:
    platform = _md(_short_name(case.request.platform.name))
    title, head = _headline(case, state, platform)
    head += _deadlines(case, state, now or _last_transition_at(case), next_deadline)
    allowed = _allowed_now(state)
    if allowed:
        head.append(f"**Allowed now:** {', '.join(allowed)}")
    head += _situation(case, state)
    blocks = [head, *_items(case), *_appeals(case), _order(case)]
    blocks.append([f"**Audit:** {case.chain.sequence} entries, head", f"`{case.chain.head_hash}`"])
    body = f"\n{_GAP}\n".join("\n".join(block) for block in blocks if block)
    return f"### {title}\n{body}"


@functools.cache
def _allowed_now(state: State) -> tuple[str, ...]:
    return allowed_triggers(state)


def _last_transition_at(case: Case) -> datetime | None:
    return datetime.fromisoformat(case.timeline[-1]["@timestamp"]) if case.timeline else None


# A line that reads as empty but does not end the paragraph (see details_markdown).
_GAP = "\u00a0"


def _headline(case: Case, state: State, platform: str) -> tuple[str, list[str]]:
    order = case.request.order
    who = (
        f"{_md(order.authority)} {_md(order.reference)} → {platform}, "
        f"{_plural(len(order.items), 'item')}"
    )
    if state is State.CLOSED:
        outcome = case.outcome
        title = f"Closed: {outcome.value.replace('_', ' ')}" if outcome else "Closed"
        sentence = _OUTCOME_TEXT.get(outcome, "") if outcome else ""
    else:
        title, sentence = _STATE_TITLES[state]
    return title, [who, sentence.format(platform=platform)]


def _deadlines(
    case: Case,
    state: State,
    now: datetime | None,
    next_deadline: tuple[datetime, str] | None,
) -> list[str]:
    facts = case.facts
    policy = _md(case.request.policy.id)
    platform = _md(_short_name(case.request.platform.name))
    breaches = sla_breaches(case)
    lines = []
    if breaches or facts.sla_breached:
        lines.append(f"**SLA {policy}: breached**")
        lines += [
            f"✗ {_BREACH_TEXT.get(b.deadline, b.deadline)} {_when(b.expired_at)}" for b in breaches
        ]
    elif not case.request.policy.has_clock:
        lines.append(f"**SLA {policy}:** no fixed deadline")
    elif state is State.CLOSED:
        lines.append(f"**SLA {policy}:** no deadline missed")
    elif facts.received_at is None:
        lines.append(f"**SLA {policy}:** the clock starts when {platform} receives the order")
    else:
        lines.append(f"**SLA {policy}:** on time")
    as_of = f" (as of {_when(now, short=True)})" if now else ""
    if facts.due_at is not None and state in _CLOCK_LABEL:
        due = facts.due_at
        if state is State.INFO_REQUESTED and facts.info_paused_at is not None:
            left = due - facts.info_paused_at
            lines.append(
                f"**Clock paused** since {_when(facts.info_paused_at)}: {_span(left)} left "
                "to decide once the authority answers"
            )
        else:
            relative = f", {_relative(due, now)}{as_of}" if now else ""
            lines.append(f"**{_CLOCK_LABEL[state]}** {_when(due)}{relative}")
    elif state in (State.OVERDUE, State.UNRESPONSIVE) and breaches and now:
        missed = breaches[-1].expired_at
        lines.append(f"**Overdue by** {_span(now - missed)}{as_of}")
    if next_deadline is not None and state not in _CLOCK_LABEL and state is not State.CLOSED:
        at, label = next_deadline
        relative = f", {_relative(at, now)}{as_of}" if now else ""
        lines.append(f"**Next:** {_md(label)} {_when(at)}{relative}")
    return lines


def _situation(case: Case, state: State) -> list[str]:
    """What the current state is about, in the words of whoever said it."""
    facts = case.facts
    if state is State.DELIVERY_FAILED and facts.delivery_error:
        return [f"**Delivery error:** {_md(_cut(facts.delivery_error))}"]
    lines = []
    if state is State.INFO_REQUESTED and facts.info_question:
        lines.append(f"**Question:** {_md(_cut(facts.info_question, 200))}")
    elif facts.ticket and state is not State.CLOSED:
        lines.append(f"**Ticket:** {_md(facts.ticket)}")
    problem = facts.platform_problem
    if problem and state is not State.CLOSED:
        status = f" (HTTP {problem['http_status']})" if problem.get("http_status") else ""
        what = _md(_cut(str(problem.get("message", "")), 200))
        lines.append(f"**Platform problem** in {_md(problem.get('call', '?'))}{status}: {what}")
    return lines


def _items(case: Case) -> list[list[str]]:
    facts = case.facts
    items = list(facts.items.values())
    verdicts = {i.item_id: facts.verdict(i) for i in items}
    outcomes = case.item_outcomes()
    undecided = _undecided(case)
    counts: dict[str, int] = {}
    for item in items:
        key = _count_key(item, verdicts[item.item_id], outcomes[item.item_id], undecided)
        counts[key] = counts.get(key, 0) + 1
    blocks = [
        [
            f"**{_plural(len(items), 'item')}:** "
            + " · ".join(f"{n} {key}" for key, n in counts.items())
        ]
    ]
    listed = items
    if len(items) > MAX_LISTED_ITEMS:  # the ones that need attention first
        rank = {Verification.CONTRADICTED: 0, Verification.UNVERIFIED: 1}
        listed = sorted(items, key=lambda i: rank.get(verdicts[i.item_id], 2))[:MAX_LISTED_ITEMS]
    for item in listed:
        verdict, outcome = verdicts[item.item_id], outcomes[item.item_id]
        blocks.append(_item(item, verdict, outcome, facts.vantages, undecided))
    if len(listed) < len(items):
        blocks.append([f"… and {len(items) - len(listed)} more (the `status` query lists all)"])
    return blocks


def _count_key(item: ItemRecord, verdict: Verification, outcome: str, undecided: str) -> str:
    if item.reinstated:
        return "reinstated"
    if verdict is not Verification.NOT_APPLICABLE:
        return _VERDICT[verdict]
    if item.effect is None:
        return undecided
    return _words(outcome)


def _undecided(case: Case) -> str:
    """What an item without a platform decision is, given where the request is."""
    if not case.closed:
        return "waiting for the platform"
    return "no response" if case.facts.received_at else "not sent"


def _item(
    item: ItemRecord,
    verdict: Verification,
    outcome: str,
    vantages: Sequence[str],
    undecided: str,
) -> list[str]:
    head = f"**{_md(item.item_id)}** {_md(_words(item.category))}"
    claim = item.claim or {}
    effect = item.effect
    if item.reinstated:
        status = "reinstated after appeal"
    elif verdict is not Verification.NOT_APPLICABLE:
        status = f"**{_VERDICT[verdict]}**"
    elif effect is None or effect == "needs_more_info":
        status = undecided if effect is None else "the platform needs more information"
    else:
        status = _md(_words(outcome))
    lines = [f"{head} — {status}"]
    if effect is not None:
        said = _md(_words(effect))
        if effect == "restricted" and claim.get("restricted_in"):
            said += f" in {_md(', '.join(claim['restricted_in']))}"
        if verdict is Verification.UNVERIFIED:
            said += " (not seen gone by our probes)"
        lines.append(f"platform: {said}")
        if claim.get("reason") and effect not in GONE_CLAIMS:
            lines.append(f"reason: “{_md(_cut(str(claim['reason']), 56))}”")
    if item.observations:
        lines.append("seen: " + " · ".join(_seen(item, vantages)))
    return lines


def _seen(item: ItemRecord, vantages: Sequence[str]) -> list[str]:
    """Each vantage's observation, marked ✓/✗/? against what should be seen there: gone where
    a removal or restriction applies, back where an appeal reinstated the item."""
    relevant = _relevant_vantages(item, vantages)
    out = []
    for vantage, record in item.observations.items():
        seen = Observation(record["observation"])
        mark = ""
        if vantage in relevant:
            if seen in INCONCLUSIVE:
                mark = "?"
            elif item.reinstated:
                mark = "✓" if seen is Observation.AVAILABLE else "✗"
            else:
                mark = "✓" if seen in UNREACHABLE else "✗"
        out.append(" ".join(p for p in (_md(vantage), mark, _words(seen.value)) if p))
    return out


def _relevant_vantages(item: ItemRecord, vantages: Sequence[str]) -> set[str]:
    """Where the claim says what should be seen (mirrors `ItemRecord.verification`): every
    vantage for a removal; inside the restricted countries for a restriction (or, with no
    vantage inside, every vantage but control); every vantage for a reinstatement."""
    if item.reinstated:
        return set(vantages)
    if item.effect not in GONE_CLAIMS:
        return set()
    if item.effect == "restricted" and item.claim is not None:
        inside = {v for v in vantages if v in item.claim.get("restricted_in", ())}
        return inside or {v for v in vantages if v != "control"}
    return set(vantages)


def _appeals(case: Case) -> list[list[str]]:
    blocks = []
    for appeal in case.facts.appeals:
        against = f"{appeal.against} of {', '.join(appeal.target_items)}"
        if appeal.outcome is None:
            status = "pending"
        else:
            status = f"{appeal.outcome} by {appeal.reviewer}"
            if appeal.reversed_items and appeal.outcome != "reversed":
                status += f" (reversed: {', '.join(appeal.reversed_items)})"
        blocks.append(
            [
                f"**Appeal** by {_md(_words(appeal.appellant_type))} against {_md(against)}: "
                f"{_md(status)}",
                f"grounds: “{_md(_cut(appeal.grounds, 80))}”",
            ]
        )
    return blocks


def _order(case: Case) -> list[str]:
    request = case.request
    order = request.order
    bases = {b.id: b for b in request.legal_bases}
    cited = "; ".join(
        f"{bases[c.basis].instrument if c.basis in bases else c.basis} {c.provision}"
        for c in order.legal_bases
    )
    approver = case.facts.approver_id
    people = f"made by {_md(case.facts.maker_id)}" + (
        f", approved by {_md(approver)}" if approver else ""
    )
    return [
        "**Order**",
        f"**Authority:** {_md(request.authority.name)} ({_md(order.authority)})",
        f"**Reference:** {_md(order.reference)}",
        f"**Platform:** {_md(request.platform.name)} ({_md(order.platform)})",
        f"**Legal basis:** {_md(_cut(cited, 160))}",
        f"**Scope:** {_md(', '.join(order.territorial_scope))} · **Priority:** "
        f"{_md(order.priority)} · {people}",
        f"**SLA policy:** {_md(request.policy.id)}: {_md(request.policy.title)}",
    ]


# --- formatting -------------------------------------------------------------------------------

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _when(moment: datetime, *, short: bool = False) -> str:
    """'4 Dec 2026 15:01 UTC' (seconds only when not zero): the same on every worker, whatever
    its locale or zone. `short` leaves out the year."""
    at = moment.astimezone(UTC)
    clock = f"{at.hour:02d}:{at.minute:02d}" + (f":{at.second:02d}" if at.second else "")
    date = f"{at.day} {_MONTHS[at.month - 1]}" + ("" if short else f" {at.year}")
    return f"{date} {clock} UTC"


def _span(delta: timedelta) -> str:
    """A duration in its two largest units: '3 h 12 min', '45 s', '3 d 4 h'; hours up to two
    days ('26 h 5 min'), as SLAs count them."""
    seconds = max(int(delta.total_seconds()), 0)
    units: tuple[tuple[int, str], ...] = ((3_600, "h"), (60, "min"), (1, "s"))
    if seconds >= 48 * 3_600:
        units = ((86_400, "d"), *units)
    parts: list[str] = []
    for size, unit in units:
        if seconds >= size:
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
        elif parts:
            break  # '2 d 0 h 5 min' reads as '2 d'
        if len(parts) == 2:
            break
    return " ".join(parts) or "0 s"


def _relative(at: datetime, now: datetime | None) -> str:
    if now is None:
        return ""
    if at >= now:
        return f"{_span(at - now)} left"
    return f"**overdue by {_span(now - at)}**"


def _short_name(name: str) -> str:
    """'Facebook (Meta Platforms Ireland)' -> 'Facebook': the pane is half the page wide."""
    return name.split(" (", 1)[0] or name


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _words(value: str) -> str:
    """An identifier as words: 'removed_globally' -> 'removed globally'."""
    return value.replace("_", " ")


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    """At most `limit` characters of one line of `text` (the full text is in the audit log)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# Besides what docket.text.markdown_text escapes, the UI's renderer (gomarkdown with its
# common extensions and SmartyPants, in the Temporal UI server) would still change these:
# `&` starts an entity (`&#x202e;` would become a real right-to-left override), `{namespace}`,
# `{workflowId}`, `{runId}` are template fields the UI fills in, `$...$` is math, `scheme:`
# starts an autolink, `(c)`, `--`, `...` and `1/2` are typeset. Each gets a backslash escape
# (valid CommonMark too) or, for a fraction's slash, an entity of our own.
_MORE_SPECIAL = re.compile(r"[&{}$#(]|(?<=[A-Za-z]):|-(?=-)|\.(?=\.)")
_FRACTION_SLASH = re.compile(r"(?<=\d)/(?=\d)")


def _md(value: object) -> str:
    """A value from people or platforms, shown literally in the UI's markdown (one line)."""
    text = str(value)
    if len(text) > _CACHED_UP_TO:
        return _escape_md(text)
    return _escape_md_cached(text)


def _escape_md(text: str) -> str:
    escaped = _MORE_SPECIAL.sub(lambda m: "\\" + m.group(), markdown_text(text))
    return _FRACTION_SLASH.sub("&#47;", escaped)


# The details are rendered on every transition (and again on every replay) from values that
# mostly repeat (ids, names, words): short ones are escaped once per worker process.
_CACHED_UP_TO = 200
_escape_md_cached = functools.lru_cache(maxsize=4096)(_escape_md)


# --- saved views ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedView:
    """A list view for officials: a visibility query over Docket's search attributes."""

    name: str
    description: str
    query: str
    url: str  # the UI's workflow list filtered by `query`
    save_url: str  # the same, and the UI saves it as `name` (on every visit: open it once)


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


_RUNNING = "ExecutionStatus = 'Running'"
_WAITING_FOR_ACK = (State.AWAITING_ACK.value, State.SECOND_NOTICE.value)
_PAST_DEADLINE = (State.SECOND_NOTICE.value, State.UNRESPONSIVE.value, State.OVERDUE.value)


def saved_views(
    ui_base_url: str, namespace: str = "default", platforms: Sequence[str] = ()
) -> list[SavedView]:
    """The views officials keep in the Temporal UI's workflow list, with links that open them
    (`url`) or open and save them in the browser (`save_url`). `platforms`: one "awaiting
    acknowledgment" view per platform id (e.g. the reference data's platforms)."""
    views = [
        (
            "Overdue",
            "open requests whose platform missed a deadline and has not acted yet "
            "(second notice, unresponsive, overdue)",
            f"{_RUNNING} AND RequestState IN {_in(_PAST_DEADLINE)}",
        ),
        (
            "Disputed",
            "open requests whose platform reports removals our probes contradict",
            f"{_RUNNING} AND RequestState = '{State.DISPUTED.value}'",
        ),
        (
            "Awaiting acknowledgment",
            "delivered, not yet acknowledged (first or second notice)",
            f"{_RUNNING} AND RequestState IN {_in(_WAITING_FOR_ACK)}",
        ),
        *(
            (
                f"Awaiting acknowledgment: {platform}",
                f"delivered to {platform}, not yet acknowledged",
                f"{_RUNNING} AND RequestState IN {_in(_WAITING_FOR_ACK)} "
                f"AND Platform = '{_quoted(platform)}'",
            )
            for platform in platforms
        ),
        (
            "Appeals pending",
            "appeals filed and not yet decided",
            f"{_RUNNING} AND RequestState = '{State.APPEALED.value}'",
        ),
        (
            "Unverified removals",
            "closed as complied, but our probes never saw every removal "
            "(outcome complied_unverified)",
            f"Outcome = '{Outcome.COMPLIED_UNVERIFIED.value}'",
        ),
        (
            "SLA breached",
            "every request whose platform missed an SLA deadline, open or closed",
            "SlaBreached = true",
        ),
        (
            "Pending approval",
            "requests waiting for an approver (four-eyes)",
            f"{_RUNNING} AND RequestState = '{State.PENDING_APPROVAL.value}'",
        ),
    ]
    base = f"{ui_base_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows"
    return [
        SavedView(
            name=name,
            description=description,
            query=query,
            url=f"{base}?{urlencode({'query': query}, quote_via=quote)}",
            save_url=f"{base}?{urlencode({'query': query, 'savedQuery': name}, quote_via=quote)}",
        )
        for name, description, query in views
    ]


def _quoted(value: str) -> str:
    """A value inside a single-quoted visibility query string."""
    if not re.fullmatch(r"[A-Za-z0-9_.:@-]+", value):
        raise ValueError(f"platform id {value!r}: expected letters, digits and _ . : @ -")
    return value


def request_url(
    ui_base_url: str, workflow_id: str, run_id: str | None = None, namespace: str = "default"
) -> str:
    """A request's page in the UI. With the run id it opens on the "User Metadata" tab
    (summary, details and current details) instead of the timeline and its raw input JSON;
    without it, the UI finds the latest run and opens its timeline."""
    base = (
        f"{ui_base_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/"
        f"{quote(workflow_id, safe='')}"
    )
    return f"{base}/{quote(run_id, safe='')}/user-metadata" if run_id else base
