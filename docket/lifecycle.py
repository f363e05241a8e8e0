"""The request lifecycle: every state, trigger, role and guard, defined once as data.

This module is the single source of truth. The workflow fires triggers through it, the
Update validators ask it what is allowed, the CLI prints its answers, the audit log uses its
trigger names as `event.action`, and `docs/lifecycle.md` is generated from it.

It is pure and deterministic (safe inside Temporal's workflow sandbox): the `transitions`
library evaluates the guards; its logger is silenced because it would repeat on replay.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from transitions import Machine, MachineError

logging.getLogger("transitions").setLevel(logging.CRITICAL + 1)


class State(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    DELIVERING = "delivering"
    DELIVERY_FAILED = "delivery_failed"
    AWAITING_ACK = "awaiting_ack"
    SECOND_NOTICE = "second_notice"
    UNRESPONSIVE = "unresponsive"
    ACKNOWLEDGED = "acknowledged"
    OVERDUE = "overdue"
    INFO_REQUESTED = "info_requested"
    VERIFYING = "verifying"
    DISPUTED = "disputed"
    MONITORING = "monitoring"
    DECLINED = "declined"
    APPEALED = "appealed"
    REINSTATING = "reinstating"
    WITHDRAWING = "withdrawing"  # withdrawn after delivery: the platform is being told
    CLOSED = "closed"


class Role(StrEnum):
    OFFICER = "officer"  # the authority's maker: files and drives a request
    APPROVER = "approver"  # the authority's checker: approves before anything is sent
    PLATFORM_LIAISON = "platform_liaison"  # acknowledges, reports effects, asks for info
    APPELLANT = "appellant"  # content owner (or their representative) filing an appeal
    APPEAL_REVIEWER = "appeal_reviewer"  # decides appeals; never the original decider
    OPERATOR = "operator"  # runs Docket; may retry, re-notify and close disputes
    AUDITOR = "auditor"  # read-only
    SYSTEM = "system"  # the workflow itself: timers, deliveries, probes


class Outcome(StrEnum):
    """How a request ended. "No response" and "declined with reasons" never merge."""

    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    UNRESPONSIVE = "unresponsive"
    COMPLIED = "complied"
    COMPLIED_UNVERIFIED = "complied_unverified"  # claimed in full; our probes never saw all gone
    PARTIALLY_COMPLIED = "partially_complied"
    DECLINED = "declined"
    DISPUTED = "disputed"
    REVERSED_ON_APPEAL = "reversed_on_appeal"


S = State
AUTHORITY = frozenset({Role.OFFICER, Role.APPROVER})
PLATFORM = frozenset({Role.PLATFORM_LIAISON})
SYSTEM = frozenset({Role.SYSTEM})
WAITING_FOR_PLATFORM = (S.AWAITING_ACK, S.SECOND_NOTICE, S.UNRESPONSIVE)
# States where the platform holds the order: a refused poll, a malformed answer or a refused
# notice is recorded there (`platform_problem`), and a withdrawal must reach the platform.
PLATFORM_HOLDS_ORDER = (
    S.AWAITING_ACK,
    S.SECOND_NOTICE,
    S.UNRESPONSIVE,
    S.ACKNOWLEDGED,
    S.OVERDUE,
    S.INFO_REQUESTED,
    S.VERIFYING,
    S.DISPUTED,
    S.MONITORING,
    S.DECLINED,
    S.APPEALED,
    S.REINSTATING,
    S.WITHDRAWING,
)
WITHDRAWABLE = (
    S.PENDING_APPROVAL,
    S.DELIVERY_FAILED,
    S.AWAITING_ACK,
    S.SECOND_NOTICE,
    S.UNRESPONSIVE,
    S.ACKNOWLEDGED,
    S.OVERDUE,
    S.INFO_REQUESTED,
    S.DISPUTED,
)


@dataclass(frozen=True)
class Guard:
    """A named condition over the case's facts; `description` is what users read."""

    name: str
    description: str


@dataclass(frozen=True)
class TransitionSpec:
    """One row of the lifecycle table. Rows for the same trigger are tried in order."""

    trigger: str
    sources: tuple[State, ...]
    dest: State
    roles: frozenset[Role]
    guards: tuple[str, ...] = ()
    outcome: Outcome | None = None
    description: str = ""


# Guards are evaluated against the facts the case exposes (see `CaseFacts`).
GUARDS: dict[str, Guard] = {
    g.name: g
    for g in (
        Guard("all_items_decided", "every item has a platform decision"),
        Guard("has_second_notice", "the SLA policy sends a second notice"),
        Guard("has_disagreement", "the platform claims an effect we do not observe"),
        Guard("any_effect", "at least one item was removed or restricted"),
        Guard("appeal_reversed_removal", "an appeal against a removal was (partly) reversed"),
        Guard("appeal_reversed_decline", "an appeal against a decline was (partly) reversed"),
        Guard("prior_monitoring", "the appeal was filed while monitoring"),
        Guard("fully_complied", "every item was removed, restricted or already gone"),
        Guard("removals_confirmed", "our probes confirmed every claimed removal"),
        Guard("platform_has_order", "the order was delivered to the platform's API"),
    )
}


def _rows() -> tuple[TransitionSpec, ...]:
    authority_or_operator = AUTHORITY | {Role.OPERATOR}
    return (
        TransitionSpec(
            "approve",
            (S.PENDING_APPROVAL,),
            S.DELIVERING,
            frozenset({Role.APPROVER}),
            description="an approver other than the maker approves; delivery starts",
        ),
        TransitionSpec(
            "reject",
            (S.PENDING_APPROVAL,),
            S.CLOSED,
            frozenset({Role.APPROVER}),
            outcome=Outcome.REJECTED,
            description="the approver rejects; nothing is sent",
        ),
        TransitionSpec(
            "delivered",
            (S.DELIVERING,),
            S.AWAITING_ACK,
            SYSTEM,
            description="the platform received the order (ticket); the SLA clock starts",
        ),
        TransitionSpec(
            "delivery_failed",
            (S.DELIVERING,),
            S.DELIVERY_FAILED,
            SYSTEM,
            description="delivery failed permanently",
        ),
        TransitionSpec(
            "retry_delivery",
            (S.DELIVERY_FAILED,),
            S.DELIVERING,
            authority_or_operator,
            description="deliver again (same idempotency key)",
        ),
        TransitionSpec(
            "acknowledge",
            (*WAITING_FOR_PLATFORM,),
            S.ACKNOWLEDGED,
            PLATFORM,
            description="the platform acknowledges receipt",
        ),
        TransitionSpec(
            "report_effect",
            (*WAITING_FOR_PLATFORM, S.ACKNOWLEDGED, S.OVERDUE),
            S.VERIFYING,
            PLATFORM,
            guards=("all_items_decided",),
            description="the platform reports its decision on the last open items",
        ),
        TransitionSpec(
            "report_effect",
            (*WAITING_FOR_PLATFORM, S.ACKNOWLEDGED),
            S.ACKNOWLEDGED,
            PLATFORM,
            description="the platform reports decisions on some items",
        ),
        TransitionSpec(
            "report_effect",
            (S.OVERDUE,),
            S.OVERDUE,
            PLATFORM,
            description="late decisions on some items",
        ),
        TransitionSpec(
            "sla_expired",
            (S.AWAITING_ACK,),
            S.SECOND_NOTICE,
            SYSTEM,
            guards=("has_second_notice",),
            description="no answer in time: a second notice is sent",
        ),
        TransitionSpec(
            "sla_expired",
            (S.AWAITING_ACK, S.SECOND_NOTICE),
            S.UNRESPONSIVE,
            SYSTEM,
            description="still no answer: the platform is unresponsive",
        ),
        TransitionSpec(
            "sla_expired",
            (S.ACKNOWLEDGED,),
            S.OVERDUE,
            SYSTEM,
            description="acknowledged but no effect within the SLA",
        ),
        TransitionSpec(
            "escalate",
            (S.UNRESPONSIVE, S.OVERDUE),
            S.CLOSED,
            AUTHORITY,
            outcome=Outcome.UNRESPONSIVE,
            description="the authority closes the case as unanswered (technical measures)",
        ),
        TransitionSpec(
            "request_info",
            (S.ACKNOWLEDGED, S.OVERDUE),
            S.INFO_REQUESTED,
            PLATFORM,
            description="the platform needs more information",
        ),
        TransitionSpec(
            "provide_info",
            (S.INFO_REQUESTED,),
            S.ACKNOWLEDGED,
            frozenset({Role.OFFICER}),
            description="the authority answers; the platform's clock resumes",
        ),
        TransitionSpec(
            "verified",
            (S.VERIFYING,),
            S.DISPUTED,
            SYSTEM,
            guards=("has_disagreement",),
            description="our probes contradict the platform's claim",
        ),
        TransitionSpec(
            "verified",
            (S.VERIFYING,),
            S.MONITORING,
            SYSTEM,
            guards=("any_effect",),
            description="effects confirmed; re-checks are scheduled",
        ),
        TransitionSpec(
            "verified",
            (S.VERIFYING,),
            S.DECLINED,
            SYSTEM,
            description="nothing was removed: the decline can be appealed",
        ),
        TransitionSpec(
            "renotify",
            (S.DISPUTED,),
            S.ACKNOWLEDGED,
            authority_or_operator,
            description="ask the platform again to give effect",
        ),
        TransitionSpec(
            "close",
            (S.DISPUTED, S.REINSTATING),
            S.CLOSED,
            authority_or_operator,
            outcome=Outcome.DISPUTED,
            description="close with the disagreement on record (claim or reinstatement unmet)",
        ),
        TransitionSpec(
            "close",
            (S.WITHDRAWING,),
            S.CLOSED,
            authority_or_operator,
            outcome=Outcome.WITHDRAWN,
            description="close the withdrawal without the platform's receipt of it (on record)",
        ),
        TransitionSpec(
            "recheck",
            (S.MONITORING,),
            S.DISPUTED,
            SYSTEM,
            guards=("has_disagreement",),
            description="content came back after removal",
        ),
        TransitionSpec(
            "close",
            (S.WITHDRAWING,),
            S.CLOSED,
            authority_or_operator,
            outcome=Outcome.WITHDRAWN,
            description="close the withdrawal without the platform's receipt of it (on record)",
        ),
        TransitionSpec(
            "recheck",
            (S.MONITORING,),
            S.MONITORING,
            SYSTEM,
            description="a scheduled re-check confirms the effects hold",
        ),
        TransitionSpec(
            "monitoring_complete",
            (S.MONITORING,),
            S.CLOSED,
            SYSTEM,
            guards=("fully_complied", "removals_confirmed"),
            outcome=Outcome.COMPLIED,
            description="re-checks and appeal window done; every item complied, confirmed",
        ),
        TransitionSpec(
            "monitoring_complete",
            (S.MONITORING,),
            S.CLOSED,
            SYSTEM,
            guards=("fully_complied",),
            outcome=Outcome.COMPLIED_UNVERIFIED,
            description="every item claimed gone, but our probes could not confirm them all",
        ),
        TransitionSpec(
            "monitoring_complete",
            (S.MONITORING,),
            S.CLOSED,
            SYSTEM,
            outcome=Outcome.PARTIALLY_COMPLIED,
            description="re-checks and appeal window done; some items declined",
        ),
        TransitionSpec(
            "file_appeal",
            (S.MONITORING, S.DECLINED),
            S.APPEALED,
            frozenset({Role.APPELLANT, Role.OFFICER, Role.PLATFORM_LIAISON}),
            description="the content owner, platform or authority appeals a decision",
        ),
        TransitionSpec(
            "decide_appeal",
            (S.APPEALED,),
            S.REINSTATING,
            frozenset({Role.APPEAL_REVIEWER}),
            guards=("appeal_reversed_removal",),
            description="a removal is reversed: the platform must reinstate",
        ),
        TransitionSpec(
            "decide_appeal",
            (S.APPEALED,),
            S.ACKNOWLEDGED,
            frozenset({Role.APPEAL_REVIEWER}),
            guards=("appeal_reversed_decline",),
            description="a decline is reversed: the platform must give effect",
        ),
        TransitionSpec(
            "decide_appeal",
            (S.APPEALED,),
            S.MONITORING,
            frozenset({Role.APPEAL_REVIEWER}),
            guards=("prior_monitoring",),
            description="upheld: back to monitoring",
        ),
        TransitionSpec(
            "decide_appeal",
            (S.APPEALED,),
            S.DECLINED,
            frozenset({Role.APPEAL_REVIEWER}),
            description="upheld: the decline stands",
        ),
        TransitionSpec(
            "reinstated",
            (S.REINSTATING,),
            S.CLOSED,
            SYSTEM,
            outcome=Outcome.REVERSED_ON_APPEAL,
            description="we observed the content back online",
        ),
        TransitionSpec(
            "appeal_window_closed",
            (S.DECLINED,),
            S.CLOSED,
            SYSTEM,
            outcome=Outcome.DECLINED,
            description="nobody appealed in time: closed as declined",
        ),
        TransitionSpec(
            "withdraw",
            tuple(s for s in WITHDRAWABLE if s in PLATFORM_HOLDS_ORDER),
            S.WITHDRAWING,
            AUTHORITY,
            guards=("platform_has_order",),
            description="the authority withdraws a delivered request: the platform is told",
        ),
        TransitionSpec(
            "withdraw",
            WITHDRAWABLE,
            S.CLOSED,
            AUTHORITY,
            outcome=Outcome.WITHDRAWN,
            description="the authority withdraws the request",
        ),
        TransitionSpec(
            "withdrawal_sent",
            (S.WITHDRAWING,),
            S.CLOSED,
            SYSTEM,
            outcome=Outcome.WITHDRAWN,
            description="the platform accepted the withdrawal notice",
        ),
        *(
            TransitionSpec(
                "platform_problem",
                (state,),
                state,
                SYSTEM,
                description="the platform refused a call or sent a malformed answer (recorded)",
            )
            for state in PLATFORM_HOLDS_ORDER
        ),
    )


TRANSITIONS: tuple[TransitionSpec, ...] = _rows()
TERMINAL = frozenset({State.CLOSED})
INITIAL = State.PENDING_APPROVAL
TRIGGERS: tuple[str, ...] = tuple(dict.fromkeys(t.trigger for t in TRANSITIONS))
SYSTEM_TRIGGERS = frozenset(t.trigger for t in TRANSITIONS if t.roles == SYSTEM)
HUMAN_TRIGGERS: tuple[str, ...] = tuple(t for t in TRIGGERS if t not in SYSTEM_TRIGGERS)


def rows_for(trigger: str) -> tuple[TransitionSpec, ...]:
    return tuple(t for t in TRANSITIONS if t.trigger == trigger)


def roles_for(trigger: str) -> frozenset[Role]:
    roles: frozenset[Role] = frozenset()
    for row in rows_for(trigger):
        roles |= row.roles
    return roles


def _machine() -> Machine:
    """The `transitions` machine of the table (no model bound yet)."""
    machine = Machine(
        model=None,
        states=[s.value for s in State],
        initial=INITIAL.value,
        auto_transitions=False,
        ignore_invalid_triggers=False,
        send_event=True,
        model_attribute="state",
    )
    for spec in TRANSITIONS:
        machine.add_transition(
            spec.trigger,
            [s.value for s in spec.sources],
            spec.dest.value,
            conditions=[_guard_callable(g) for g in spec.guards],
            after=_recorder(spec),
        )
    return machine


def sources_for(trigger: str) -> frozenset[State]:
    """The states `trigger` may leave (guards not evaluated), as the machine knows them."""
    event = _TABLE.events.get(trigger)
    return frozenset(State(s) for s in event.transitions) if event is not None else frozenset()


def triggers_from(state: State | str) -> tuple[str, ...]:
    """Triggers with at least one row leaving `state` (guards not evaluated)."""
    return tuple(_TABLE.get_triggers(State(state).value))


def allowed_triggers(
    state: State | str, roles: Iterable[Role | str] | None = None, *, include_system: bool = False
) -> tuple[str, ...]:
    """Which triggers may be fired now, optionally only those open to one of `roles`."""
    wanted = {Role(r) for r in roles} if roles is not None else None
    out = []
    for trigger in triggers_from(state):
        if trigger in SYSTEM_TRIGGERS and not include_system:
            continue
        if wanted is not None and not (roles_for(trigger) & wanted):
            continue
        out.append(trigger)
    return tuple(out)


class GuardFacts:
    """What guards may look at. The case (docket.case) implements these predicates."""

    def all_items_decided(self) -> bool:
        raise NotImplementedError

    def has_second_notice(self) -> bool:
        raise NotImplementedError

    def has_disagreement(self) -> bool:
        raise NotImplementedError

    def any_effect(self) -> bool:
        raise NotImplementedError

    def appeal_reversed_removal(self) -> bool:
        raise NotImplementedError

    def appeal_reversed_decline(self) -> bool:
        raise NotImplementedError

    def prior_monitoring(self) -> bool:
        raise NotImplementedError

    def fully_complied(self) -> bool:
        raise NotImplementedError

    def removals_confirmed(self) -> bool:
        raise NotImplementedError

    def platform_has_order(self) -> bool:
        raise NotImplementedError


_NO_FACTS = GuardFacts()  # what the lifecycle's cursor holds between questions


@dataclass
class _Cursor:
    """The model `transitions` drives: a state plus the facts its guards read."""

    state: str
    facts: GuardFacts
    fired: list[TransitionSpec] = field(default_factory=list)


class InvalidTransition(Exception):
    """A trigger that the lifecycle does not allow in the current state."""

    def __init__(self, trigger: str, state: State | str) -> None:
        self.trigger = trigger
        self.state = State(state)
        allowed = ", ".join(allowed_triggers(self.state, include_system=True)) or "none"
        if trigger not in TRIGGERS:
            msg = f"unknown trigger {trigger!r}; known triggers: {', '.join(TRIGGERS)}"
        else:
            msg = (
                f"{trigger!r} is not allowed in state {self.state.value!r}; allowed now: {allowed}"
            )
        super().__init__(msg)


class Lifecycle:
    """A `transitions` machine built from `TRANSITIONS`; one per case (not thread-shared)."""

    def __init__(self) -> None:
        self._machine = _machine()
        # One model for every question: binding a model to the machine is the costly part.
        self._cursor = _Cursor(state=INITIAL.value, facts=_NO_FACTS)
        self._machine.add_model(self._cursor, initial=INITIAL.value)

    def next_state(self, state: State | str, trigger: str, facts: GuardFacts) -> TransitionSpec:
        """The row that `trigger` would take from `state` given `facts` (nothing mutates).

        The machine decides: it refuses a trigger the state does not allow (MachineError)
        and evaluates the guards of the trigger's rows in order. Rows may share their source
        and destination (two outcomes of `monitoring_complete`), so the row that fired is
        learnt from its `after` callback rather than from the state reached."""
        state = State(state)
        if trigger not in TRIGGERS:
            raise InvalidTransition(trigger, state)
        cursor = self._cursor
        cursor.state, cursor.facts, cursor.fired = state.value, facts, []
        try:
            getattr(cursor, trigger)()
        except MachineError:
            raise InvalidTransition(trigger, state) from None
        finally:
            cursor.facts = _NO_FACTS  # hold no reference to the caller's facts
        if not cursor.fired:  # every row's guards failed: the table has no fallback here
            raise InvalidTransition(trigger, state)
        return cursor.fired[-1]


def _guard_callable(name: str) -> Callable[[Any], bool]:
    def check(event: Any) -> bool:
        return bool(getattr(event.model.facts, name)())

    check.__name__ = name
    return check


def _recorder(spec: TransitionSpec) -> Callable[[Any], None]:
    def record(event: Any) -> None:
        event.model.fired.append(spec)

    return record


# The machine asked about the table itself (which triggers leave a state, which states a
# trigger leaves); each Lifecycle binds its own model to a machine of its own.
_TABLE = _machine()

_PER_THREAD = threading.local()


def lifecycle() -> Lifecycle:
    """This thread's Lifecycle, built once per thread and shared by every case it plans.

    `next_state` keeps nothing between calls (the cursor is reset on each), so sharing one
    machine changes no answer; building a machine and binding its model cost ~3 ms, which a
    case paid once per workflow run (a new request, or one replayed after eviction). A
    machine is never shared across threads: workflow activations run in a thread pool."""
    found: Lifecycle | None = getattr(_PER_THREAD, "lifecycle", None)
    if found is None:
        found = _PER_THREAD.lifecycle = Lifecycle()
    return found


def describe_guards(spec: TransitionSpec) -> str:
    return " and ".join(GUARDS[g].description for g in spec.guards)


def table() -> list[Mapping[str, str]]:
    """The lifecycle as rows for docs and `starter.py triggers`."""
    return [
        {
            "trigger": t.trigger,
            "from": ", ".join(s.value for s in t.sources),
            "to": t.dest.value + (f" ({t.outcome.value})" if t.outcome else ""),
            "roles": ", ".join(sorted(r.value for r in t.roles)),
            "guard": describe_guards(t),
            "description": t.description,
        }
        for t in TRANSITIONS
    ]
