"""The lifecycle machine as data: every (state, trigger) pair, roles, guards, and a property test
that drives random sequences through the pure Case."""

from __future__ import annotations

import copy
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docket.case import Case, CommandRejected, RequestInput
from docket.lifecycle import (
    GUARDS,
    HUMAN_TRIGGERS,
    INITIAL,
    SYSTEM_TRIGGERS,
    TERMINAL,
    TRANSITIONS,
    TRIGGERS,
    GuardFacts,
    InvalidTransition,
    Lifecycle,
    Outcome,
    Role,
    State,
    allowed_triggers,
    roles_for,
    sources_for,
    table,
    triggers_from,
)
from docket.models import (
    COMMANDS,
    EFFECT_CLAIMS,
    SYSTEM_ACTOR,
    Actor,
    Command,
    ItemEffect,
    parse_command,
)
from docket.reference import default_reference
from docket.validation import fingerprint, validate_order, workflow_id_for
from docket.verification import INCONCLUSIVE, Evidence, Observation

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Facts(GuardFacts):
    """Guard facts as a set of names that hold."""

    def __init__(self, true: Iterable[str] = ()) -> None:
        self.true = frozenset(true)
        unknown = self.true - set(GUARDS)
        assert not unknown, unknown

    def _is(self, name: str) -> bool:
        return name in self.true

    def all_items_decided(self) -> bool:
        return self._is("all_items_decided")

    def has_second_notice(self) -> bool:
        return self._is("has_second_notice")

    def has_disagreement(self) -> bool:
        return self._is("has_disagreement")

    def any_effect(self) -> bool:
        return self._is("any_effect")

    def appeal_reversed_removal(self) -> bool:
        return self._is("appeal_reversed_removal")

    def appeal_reversed_decline(self) -> bool:
        return self._is("appeal_reversed_decline")

    def prior_monitoring(self) -> bool:
        return self._is("prior_monitoring")

    def fully_complied(self) -> bool:
        return self._is("fully_complied")

    def removals_confirmed(self) -> bool:
        return self._is("removals_confirmed")

    def platform_has_order(self) -> bool:
        return self._is("platform_has_order")


LIFECYCLE = Lifecycle()
PAIRS = [(state, trigger) for state in State for trigger in TRIGGERS]


# --- every (state, trigger) pair -----------------------------------------------------------


@pytest.mark.parametrize(("state", "trigger"), PAIRS, ids=[f"{s}-{t}" for s, t in PAIRS])
def test_every_state_trigger_pair(state: State, trigger: str) -> None:
    rows = [r for r in TRANSITIONS if r.trigger == trigger and state in r.sources]
    if rows:
        # with no guard holding, the unguarded fallback row for this source is taken
        spec = LIFECYCLE.next_state(state, trigger, Facts())
        assert spec in rows
        assert not spec.guards
        assert state in spec.sources
        assert trigger in triggers_from(state)
        # with every guard holding, the first row listing this source is taken
        assert LIFECYCLE.next_state(state, trigger, Facts(GUARDS)) == rows[0]
    else:
        with pytest.raises(InvalidTransition) as info:
            LIFECYCLE.next_state(state, trigger, Facts(GUARDS))
        allowed = ", ".join(allowed_triggers(state, include_system=True)) or "none"
        assert str(info.value) == (
            f"{trigger!r} is not allowed in state {state.value!r}; allowed now: {allowed}"
        )
        assert info.value.state is state
        assert trigger not in triggers_from(state)


def test_forbidden_message_example() -> None:
    with pytest.raises(InvalidTransition) as info:
        LIFECYCLE.next_state("pending_approval", "acknowledge", Facts())
    assert str(info.value) == (
        "'acknowledge' is not allowed in state 'pending_approval'; "
        "allowed now: approve, reject, withdraw"
    )
    with pytest.raises(InvalidTransition) as info:
        LIFECYCLE.next_state(State.CLOSED, "withdraw", Facts())
    assert str(info.value) == "'withdraw' is not allowed in state 'closed'; allowed now: none"


def test_unknown_trigger() -> None:
    with pytest.raises(InvalidTransition) as info:
        LIFECYCLE.next_state(State.ACKNOWLEDGED, "teleport", Facts())
    assert str(info.value) == f"unknown trigger 'teleport'; known triggers: {', '.join(TRIGGERS)}"


def test_allowed_exactly_when_state_in_sources() -> None:
    for state in State:
        expected = tuple(t for t in TRIGGERS if state in sources_for(t))
        assert triggers_from(state) == expected
        assert allowed_triggers(state, include_system=True) == expected
        assert allowed_triggers(state) == tuple(t for t in expected if t not in SYSTEM_TRIGGERS)


# --- roles ---------------------------------------------------------------------------------

R = Role
EXPECTED_ROLES: dict[str, set[Role]] = {
    "approve": {R.APPROVER},
    "reject": {R.APPROVER},
    "delivered": {R.SYSTEM},
    "delivery_failed": {R.SYSTEM},
    "retry_delivery": {R.OFFICER, R.APPROVER, R.OPERATOR},
    "acknowledge": {R.PLATFORM_LIAISON},
    "report_effect": {R.PLATFORM_LIAISON},
    "sla_expired": {R.SYSTEM},
    "escalate": {R.OFFICER, R.APPROVER},
    "request_info": {R.PLATFORM_LIAISON},
    "provide_info": {R.OFFICER},
    "verified": {R.SYSTEM},
    "renotify": {R.OFFICER, R.APPROVER, R.OPERATOR},
    "close": {R.OFFICER, R.APPROVER, R.OPERATOR},
    "recheck": {R.SYSTEM},
    "monitoring_complete": {R.SYSTEM},
    "file_appeal": {R.APPELLANT, R.OFFICER, R.PLATFORM_LIAISON},
    "decide_appeal": {R.APPEAL_REVIEWER},
    "reinstated": {R.SYSTEM},
    "appeal_window_closed": {R.SYSTEM},
    "withdraw": {R.OFFICER, R.APPROVER},
    "withdrawal_sent": {R.SYSTEM},
    "platform_problem": {R.SYSTEM},
}


def test_roles_per_trigger() -> None:
    assert set(TRIGGERS) == set(EXPECTED_ROLES)
    for trigger, roles in EXPECTED_ROLES.items():
        assert roles_for(trigger) == roles, trigger
    assert {t for t, r in EXPECTED_ROLES.items() if r == {R.SYSTEM}} == SYSTEM_TRIGGERS
    assert set(HUMAN_TRIGGERS) == set(COMMANDS)
    for rows in TRANSITIONS:  # no row mixes people and the system; auditors never act
        assert rows.roles == {R.SYSTEM} or R.SYSTEM not in rows.roles
        assert R.AUDITOR not in rows.roles


@pytest.mark.parametrize(
    ("state", "roles", "expected"),
    [
        (State.PENDING_APPROVAL, [R.APPROVER], ("approve", "reject", "withdraw")),
        (State.PENDING_APPROVAL, [R.OFFICER], ("withdraw",)),
        (State.PENDING_APPROVAL, [R.PLATFORM_LIAISON], ()),
        (State.AWAITING_ACK, [R.PLATFORM_LIAISON], ("acknowledge", "report_effect")),
        (State.ACKNOWLEDGED, [R.PLATFORM_LIAISON], ("report_effect", "request_info")),
        (State.ACKNOWLEDGED, [R.OFFICER], ("withdraw",)),
        (State.INFO_REQUESTED, [R.OFFICER], ("provide_info", "withdraw")),
        (State.INFO_REQUESTED, [R.APPROVER], ("withdraw",)),
        (State.DISPUTED, [R.OPERATOR], ("renotify", "close")),
        (State.DELIVERY_FAILED, ["operator"], ("retry_delivery",)),
        (State.MONITORING, [R.APPELLANT], ("file_appeal",)),
        (State.DECLINED, [R.OFFICER], ("file_appeal",)),
        (State.APPEALED, [R.APPEAL_REVIEWER], ("decide_appeal",)),
        (State.APPEALED, [R.OFFICER, R.APPROVER], ()),
        (State.UNRESPONSIVE, [R.OFFICER], ("escalate", "withdraw")),
        (State.CLOSED, list(Role), ()),
        (State.DELIVERING, list(Role), ()),
        (State.AWAITING_ACK, [R.AUDITOR], ()),
    ],
)
def test_allowed_triggers_by_role(
    state: State, roles: list[Any], expected: tuple[str, ...]
) -> None:
    assert allowed_triggers(state, roles) == expected


def test_system_triggers_only_with_include_system() -> None:
    assert allowed_triggers(State.DELIVERING) == ()
    assert allowed_triggers(State.DELIVERING, include_system=True) == (
        "delivered",
        "delivery_failed",
    )
    assert allowed_triggers(State.MONITORING, [R.SYSTEM], include_system=True) == (
        "recheck",
        "monitoring_complete",
        "platform_problem",
    )


# --- guards --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "trigger", "true", "dest"),
    [
        (State.AWAITING_ACK, "report_effect", {"all_items_decided"}, State.VERIFYING),
        (State.AWAITING_ACK, "report_effect", set(), State.ACKNOWLEDGED),
        (State.UNRESPONSIVE, "report_effect", set(), State.ACKNOWLEDGED),
        (State.OVERDUE, "report_effect", {"all_items_decided"}, State.VERIFYING),
        (State.OVERDUE, "report_effect", set(), State.OVERDUE),
        (State.ACKNOWLEDGED, "report_effect", set(), State.ACKNOWLEDGED),
        (State.AWAITING_ACK, "sla_expired", {"has_second_notice"}, State.SECOND_NOTICE),
        (State.AWAITING_ACK, "sla_expired", set(), State.UNRESPONSIVE),
        (State.SECOND_NOTICE, "sla_expired", {"has_second_notice"}, State.UNRESPONSIVE),
        (State.ACKNOWLEDGED, "sla_expired", {"has_second_notice"}, State.OVERDUE),
        (State.VERIFYING, "verified", {"has_disagreement", "any_effect"}, State.DISPUTED),
        (State.VERIFYING, "verified", {"any_effect"}, State.MONITORING),
        (State.VERIFYING, "verified", set(), State.DECLINED),
        (State.MONITORING, "recheck", {"has_disagreement"}, State.DISPUTED),
        (State.MONITORING, "recheck", set(), State.MONITORING),
        (State.MONITORING, "monitoring_complete", {"fully_complied"}, State.CLOSED),
        (State.MONITORING, "monitoring_complete", set(), State.CLOSED),
        (State.APPEALED, "decide_appeal", {"appeal_reversed_removal"}, State.REINSTATING),
        (State.APPEALED, "decide_appeal", {"appeal_reversed_decline"}, State.ACKNOWLEDGED),
        (
            State.APPEALED,
            "decide_appeal",
            {"appeal_reversed_decline", "prior_monitoring"},
            State.ACKNOWLEDGED,
        ),
        (State.APPEALED, "decide_appeal", {"prior_monitoring"}, State.MONITORING),
        (State.APPEALED, "decide_appeal", set(), State.DECLINED),
    ],
)
def test_guard_dependent_rows(state: State, trigger: str, true: set[str], dest: State) -> None:
    assert LIFECYCLE.next_state(state, trigger, Facts(true)).dest is dest


def test_monitoring_complete_outcome_depends_on_compliance_and_verification() -> None:
    def outcome(*true: str) -> Outcome | None:
        return LIFECYCLE.next_state(State.MONITORING, "monitoring_complete", Facts(true)).outcome

    assert outcome("fully_complied", "removals_confirmed") is Outcome.COMPLIED
    # claimed in full, but some removal was never seen gone: never plain "complied"
    assert outcome("fully_complied") is Outcome.COMPLIED_UNVERIFIED
    assert outcome() is Outcome.PARTIALLY_COMPLIED
    assert outcome("removals_confirmed") is Outcome.PARTIALLY_COMPLIED


def test_every_guard_is_used_and_defined() -> None:
    used = {g for row in TRANSITIONS for g in row.guards}
    assert used == set(GUARDS)
    for name in GUARDS:
        assert callable(getattr(GuardFacts, name))


def test_next_state_does_not_keep_models() -> None:
    before = len(LIFECYCLE._machine.models)
    for _ in range(3):
        LIFECYCLE.next_state(State.VERIFYING, "verified", Facts({"any_effect"}))
    assert len(LIFECYCLE._machine.models) == before


def test_guard_exception_propagates_and_leaves_no_model() -> None:
    class Broken(Facts):
        def all_items_decided(self) -> bool:
            raise RuntimeError("boom")

    before = len(LIFECYCLE._machine.models)
    with pytest.raises(RuntimeError, match="boom"):
        LIFECYCLE.next_state(State.ACKNOWLEDGED, "report_effect", Broken())
    assert len(LIFECYCLE._machine.models) == before


def test_transitions_logger_is_silenced(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("transitions")
    assert logger.getEffectiveLevel() > logging.CRITICAL
    with caplog.at_level(logging.DEBUG):
        logger.setLevel(logging.CRITICAL + 1)  # caplog may lower the root level only
        Lifecycle().next_state(State.PENDING_APPROVAL, "approve", Facts())
        with pytest.raises(InvalidTransition):
            Lifecycle().next_state(State.CLOSED, "approve", Facts())
    assert not [r for r in caplog.records if r.name.startswith("transitions")]


# --- the graph -----------------------------------------------------------------------------


def _successors(state: State) -> set[State]:
    return {row.dest for row in TRANSITIONS if state in row.sources}


def _reachable(start: State) -> set[State]:
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in _successors(queue.popleft()) - seen:
            seen.add(nxt)
            queue.append(nxt)
    return seen


def test_every_state_reachable_from_initial() -> None:
    assert _reachable(INITIAL) == set(State)


@pytest.mark.parametrize("state", list(State))
def test_every_state_has_a_path_to_closed(state: State) -> None:
    assert State.CLOSED in _reachable(state)


def test_terminal_has_no_way_out() -> None:
    assert {State.CLOSED} == TERMINAL
    assert _successors(State.CLOSED) == set()
    assert triggers_from(State.CLOSED) == ()


def test_closed_exactly_when_an_outcome_is_set() -> None:
    for row in TRANSITIONS:
        assert (row.dest is State.CLOSED) == (row.outcome is not None), row
    outcomes = {row.outcome for row in TRANSITIONS if row.outcome}
    assert outcomes == set(Outcome)


def test_table_has_one_row_per_spec() -> None:
    rows = table()
    assert len(rows) == len(TRANSITIONS)
    assert rows[0] == {
        "trigger": "approve",
        "from": "pending_approval",
        "to": "delivering",
        "roles": "approver",
        "guard": "",
        "description": "an approver other than the maker approves; delivery starts",
    }
    reject = next(r for r in rows if r["trigger"] == "reject")
    assert reject["to"] == "closed (rejected)"


# --- property: random sequences through the pure Case --------------------------------------

REF = default_reference()
RAW = json.loads((EXAMPLES / "seed" / "mic-facebook-2017.json").read_text(encoding="utf-8"))
RAW["items"] = RAW["items"][:2]
ORDER = validate_order(RAW, REF, now=datetime(2026, 11, 29, tzinfo=UTC))
ITEM_IDS = [i.item_id for i in ORDER.items]


def _request(policy: str) -> RequestInput:
    return RequestInput(
        request_id=workflow_id_for(ORDER.authority, ORDER.reference),
        order=ORDER,
        submitted_by=REF.actor(ORDER.officer),
        fingerprint=fingerprint(ORDER),
        authority=REF.authorities[ORDER.authority],
        platform=REF.platforms[ORDER.platform],
        policy=REF.sla_policies[policy],
        legal_bases=tuple(REF.legal_bases[c.basis] for c in ORDER.legal_bases),
        categories=tuple(REF.categories[c] for c in ORDER.categories),
        vantages=("control", "VN"),
    )


ALL_HUMAN = tuple(r for r in Role if r is not Role.SYSTEM)
ACTORS: tuple[Actor, ...] = (
    *(REF.actor(a) for a in sorted(REF.actors)),
    # people holding several roles: the checks must catch them by id, not by role
    Actor(id="nguyen.van.an", roles=ALL_HUMAN, organization="MIC"),
    Actor(id="tran.thi.binh", roles=ALL_HUMAN, organization="MIC"),
    Actor(id="liaison.facebook", roles=ALL_HUMAN, organization="Meta"),
    Actor(id="hoang.minh.uploader", roles=ALL_HUMAN, organization="Private"),
    Actor(id="independent.reviewer", roles=(Role.APPEAL_REVIEWER,), organization="Board"),
)
EFFECTS = ("removed_globally", "restricted", "declined", "not_found", "already_removed")
OBSERVATIONS = tuple(Observation)
T0 = datetime(2017, 4, 26, 3, 0, tzinfo=UTC)
CLOSING = frozenset({"reject", "withdraw", "escalate", "close"})


def _command(trigger: str, actor: Actor, draw: Callable[..., Any]) -> Command | None:
    payload: dict[str, Any] = {"actor": actor, "reason": f"random {trigger}"}
    ids = st.sampled_from([*ITEM_IDS, *ITEM_IDS, *ITEM_IDS, "fb-9"])  # unknown items rarely
    if trigger == "report_effect":
        chosen = draw(st.lists(ids, min_size=1, max_size=3, unique=True))
        effects = []
        same = draw(st.sampled_from([None, *EFFECTS]))  # often one decision for all items
        for item_id in chosen:
            effect = same or draw(st.sampled_from([*EFFECTS, "needs_more_info"]))
            effects.append(
                ItemEffect(
                    item_id=item_id,
                    effect=effect,
                    restricted_in=("VN",) if effect == "restricted" else (),
                    reason="not illegal" if effect == "declined" else None,
                )
            )
        payload["effects"] = tuple(effects)
    elif trigger == "request_info":
        payload["question"] = "Which provision?"
    elif trigger == "provide_info":
        payload["answer"] = "Điều 5 khoản 1"
    elif trigger == "file_appeal":
        payload["appellant_type"] = draw(
            st.sampled_from(["content_owner", "platform", "authority"])
        )
        payload["target_items"] = tuple(draw(st.lists(ids, min_size=1, max_size=2, unique=True)))
        payload["grounds"] = "Không vi phạm"
    elif trigger == "decide_appeal":
        outcome = draw(st.sampled_from(["upheld", "reversed", "partially_reversed"]))
        payload["outcome"] = outcome
        if outcome == "partially_reversed":
            payload["reversed_items"] = (draw(ids),)
    return parse_command(trigger, payload)


def _evidence(case: Case, draw: Callable[..., Any], now: datetime) -> list[Evidence]:
    out = []
    for item_id in draw(st.lists(st.sampled_from(ITEM_IDS), max_size=3, unique=True)):
        for vantage in ("control", "VN"):
            seen = draw(st.sampled_from(OBSERVATIONS))
            url = case.facts.items[item_id].url
            out.append(
                Evidence(
                    item_id=item_id,
                    vantage=vantage,
                    url=url,
                    observation=seen,
                    inconclusive=seen in INCONCLUSIVE,
                    status_code=200,
                    final_url=url,
                    body_sha256=None,
                    marker="test",
                    probed_at=now,
                    markers_version="v",
                )
            )
    return out


def _snapshot(case: Case) -> tuple[Any, ...]:
    return (copy.deepcopy(case.facts), case.state, case.outcome, case.chain, len(case.timeline))


@pytest.mark.slow(10)
@settings(
    max_examples=100,  # sequences of up to 60 steps over 3 policies (250 before: 2.5x the CPU)
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), policy=st.sampled_from(["VN-C38-2016", "VN-D147-2024", "EU-DSA-ART9"]))
def test_random_sequences_keep_the_invariants(data: st.DataObject, policy: str) -> None:
    draw = data.draw
    case = Case(_request(policy))
    now = T0
    case.commit(case.plan_submission(now, []))
    for _ in range(draw(st.integers(min_value=1, max_value=60))):
        now = now + timedelta(minutes=draw(st.integers(min_value=0, max_value=3000)))
        state = case.current
        allowed = allowed_triggers(state, include_system=True)
        onward = [t for t in allowed if t not in CLOSING]
        roll = draw(st.integers(0, 19))
        if onward and roll < 16:  # mostly move on, so that deep states are reached
            trigger = draw(st.sampled_from(onward))
        elif allowed and roll < 18:
            trigger = draw(st.sampled_from(allowed))
        else:
            trigger = draw(st.sampled_from(TRIGGERS))
        before = _snapshot(case)
        facts_before = copy.deepcopy(case.facts)
        try:
            if trigger in SYSTEM_TRIGGERS:
                change: dict[str, Any] = {}
                if trigger == "delivered":
                    change = {"ticket": "T-1", "sent_at": now, "received_at": now}
                planned = case.plan_system(
                    trigger,
                    now,
                    reason="random system event",
                    actor=SYSTEM_ACTOR,
                    change=change,
                    evidence=_evidence(case, draw, now)
                    if trigger in ("verified", "recheck", "reinstated")
                    else (),
                )
                actor = SYSTEM_ACTOR
            else:
                fit = [a for a in ACTORS if a.has_any(roles_for(trigger))]
                pool = fit if fit and draw(st.integers(0, 9)) < 8 else list(ACTORS)
                actor = draw(st.sampled_from(pool))
                command = _command(trigger, actor, draw)
                assert command is not None
                planned = case.plan_command(command, now)
        except CommandRejected as exc:
            assert _snapshot(case) == before  # a refusal leaves no trace
            assert f"state is '{state.value}'" in str(exc)
            continue
        # planning works on a copy (CaseFacts.for_planning): the case is as it was until commit
        assert _snapshot(case) == before, "planning changed the committed case"
        # -- a planned transition obeys the table --
        assert state is not State.CLOSED, "no trigger leaves closed"
        assert planned.from_state is state
        assert planned.spec is not None
        assert state in planned.spec.sources
        assert planned.to_state is planned.spec.dest
        assert actor.has_any(planned.spec.roles)
        if trigger == "approve":
            assert actor.id != ORDER.officer, "four-eyes"
        if planned.to_state is State.VERIFYING:
            assert planned.facts.all_items_decided()
        if planned.to_state is State.SECOND_NOTICE:
            assert policy == "VN-C38-2016"
        if trigger == "decide_appeal":
            appeal = planned.facts.appeals[-1]
            involved = {ORDER.officer, facts_before.approver_id, appeal.filed_by}
            involved |= {facts_before.items[i].claim_by for i in appeal.target_items}
            assert actor.id not in involved
            assert actor.id != SYSTEM_ACTOR.id
        if trigger == "file_appeal":
            appeal = planned.facts.appeals[-1]
            effects = {facts_before.items[i].effect for i in appeal.target_items}
            assert effects <= EFFECT_CLAIMS or effects == {"declined"}
        case.commit(planned)
        # -- invariants after every committed transition --
        assert (case.outcome is not None) == (case.current is State.CLOSED)
        assert case.chain.sequence == len(case.timeline)
        assert case.timeline[-1]["prev_hash"] == case.timeline[-2]["hash"]
        assert case.timeline[-1]["event"]["action"] == trigger
        if policy == "EU-DSA-ART9":
            assert case.facts.due_at is None
        if case.current is State.CLOSED:
            data_out = case.timeline[-1]["docket"]["data"]
            assert data_out["outcome"] == case.outcome.value  # type: ignore[union-attr]
            assert set(data_out["item_outcomes"]) == set(ITEM_IDS)
    assert [e["event"]["sequence"] for e in case.timeline] == list(range(1, len(case.timeline) + 1))
