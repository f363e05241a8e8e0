"""One request as a pure, deterministic case: facts, command checks, planned transitions.

The workflow owns a `Case` and drives it; nothing here does I/O or reads a clock (times come
in as arguments, from `workflow.now()`). A transition is *planned* first (facts copied and
changed, the lifecycle picks the next state, the audit entry is built and chained) and
*committed* only after its audit entry is durable. Update validators run the same planning
code, so a command that would be refused leaves no trace.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from audit.entry import ChainHead, build_entry
from docket.lifecycle import (
    INITIAL,
    WAITING_FOR_PLATFORM,
    GuardFacts,
    InvalidTransition,
    Lifecycle,
    Outcome,
    Role,
    State,
    TransitionSpec,
    allowed_triggers,
    lifecycle,
    roles_for,
    sources_for,
)
from docket.models import (
    DECISIONS,
    EFFECT_CLAIMS,
    GONE_CLAIMS,
    Acknowledge,
    Actor,
    Command,
    DecideAppeal,
    FileAppeal,
    ItemEffect,
    Model,
    Order,
    ProvideInfo,
    Receipt,
    ReportEffect,
    RequestInfo,
    utc_iso,
)
from docket.platform_protocol import LegalBasis as WireLegalBasis
from docket.platform_protocol import Notice, OrderItem, OrderPayload, PlatformStatus
from docket.reference import Authority, Category, LegalBasis, Platform, SlaPolicy
from docket.verification import UNREACHABLE, Evidence, Observation


class Verification(StrEnum):
    """What our own probes make of a platform's claim that an item is gone or restricted."""

    CONFIRMED = "confirmed"  # every relevant vantage saw it unreachable (at least once)
    UNVERIFIED = "unverified"  # nothing contradicts it, but we never saw it gone
    CONTRADICTED = "contradicted"  # a relevant vantage still sees the content
    NOT_APPLICABLE = "not_applicable"  # no claim of removal (declined, pending)


# The words requests started before the trust-boundary change wrote in their entries: their
# replay must plan the very same entries.
LEGACY_VERIFICATION_WORDS = {
    Verification.CONFIRMED: "confirmed",
    Verification.UNVERIFIED: "inconclusive",
    Verification.CONTRADICTED: "disagrees",
    Verification.NOT_APPLICABLE: "not_applicable",
}


class RequestInput(Model):
    """Everything a run needs, resolved at submission: the order and a snapshot of the
    reference data it relies on (so the policy applied is recorded and never changes under a
    running request). It holds no secret: platforms are named, credentials stay in the worker."""

    request_id: str
    order: Order
    submitted_by: Actor
    fingerprint: str
    authority: Authority
    platform: Platform
    policy: SlaPolicy
    legal_bases: tuple[LegalBasis, ...]
    categories: tuple[Category, ...]
    vantages: tuple[str, ...] = ("control",)

    def wire_order(self) -> OrderPayload:
        """The order as protocol v1 sends it to the platform (no secret, no internal ids)."""
        order = self.order
        bases = {b.id: b for b in self.legal_bases}
        return OrderPayload(
            request_id=self.request_id,
            authority=self.authority.name,
            reference=order.reference,
            legal_bases=[
                WireLegalBasis(
                    instrument=bases[c.basis].instrument,
                    article=c.provision,
                    url=bases[c.basis].url,
                )
                for c in order.legal_bases
            ],
            statement_of_reasons=order.statement_of_reasons,
            territorial_scope=list(order.territorial_scope),
            redress=order.redress,
            priority=order.priority,
            sla_policy=self.policy.id,
            language=order.language,
            items=[
                OrderItem(
                    item_id=i.item_id,
                    url=i.url,
                    content_type=i.content_type,
                    category=i.category,
                    reason=i.reason,
                )
                for i in order.items
            ],
        )


class RequestResult(Model):
    """What a finished run returns: the outcome and the audit anchor (count and head hash)."""

    request_id: str
    state: str
    outcome: str | None
    item_outcomes: dict[str, str]
    audit_count: int
    audit_head: str
    # per item: confirmed | unverified | contradicted | not_applicable (empty for requests
    # started before verification was recorded per item)
    item_verification: dict[str, str] = Field(default_factory=dict)


class CommandRejected(Exception):
    """A command refused before anything happened; the message says why and what is allowed."""

    def __init__(
        self,
        message: str,
        state: State,
        roles: Sequence[Role] | None = None,
        *,
        code: str | None = None,
    ) -> None:
        allowed = allowed_triggers(state, roles) if roles is not None else ()
        allowed_all = allowed_triggers(state)
        hint = f"state is {state.value!r}; allowed now: {', '.join(allowed_all) or 'nothing'}"
        if roles is not None:
            hint += f"; for roles {', '.join(sorted(roles))}: {', '.join(allowed) or 'nothing'}"
        super().__init__(f"{message} ({hint})")
        self.state = state
        self.reason = message
        self.code = code  # for scripts: a refusal they may want to tell apart (`replayed`)


@dataclass(frozen=True)
class Signature:
    """A human command's proof, kept in its entry (`docket.signed`): the exact statement
    that was signed and the SSH signature over it (which carries the credential), so anyone
    can check who acted with `ssh-keygen -Y verify` (docs/auditing.md)."""

    statement: str
    signature: str
    nonce: str
    key_fingerprint: str
    ca_fingerprint: str
    credential_serial: int
    organization_id: str

    def entry(self) -> dict[str, Any]:
        return {
            "statement": self.statement,
            "signature": self.signature,
            "key_fingerprint": self.key_fingerprint,
            "ca_fingerprint": self.ca_fingerprint,
            "credential_serial": self.credential_serial,
            "organization_id": self.organization_id,
        }


@dataclass
class ItemRecord:
    item_id: str
    url: str
    category: str
    content_type: str
    claim: dict[str, Any] | None = None  # the platform's last decision (ItemEffect as JSON)
    claim_by: str | None = None
    observations: dict[str, dict[str, Any]] = field(default_factory=dict)  # vantage -> evidence
    baseline: dict[str, Any] | None = None
    reinstated: bool = False
    confirmed_once: bool = False  # our probes confirmed the current claim at least once

    @property
    def effect(self) -> str | None:
        return None if self.claim is None else str(self.claim["effect"])

    @property
    def decided(self) -> bool:
        return self.effect in DECISIONS

    def verification(self, vantages: Sequence[str]) -> Verification:
        """The claim against our observations: contradicted as soon as a relevant vantage
        sees the content; confirmed once every relevant vantage saw it unreachable (and not
        contradicted since); otherwise unverified (login walls, 404s, probe errors, a country
        we cannot probe from): never counted as removed."""
        effect = self.effect
        if effect not in GONE_CLAIMS:
            return Verification.NOT_APPLICABLE
        relevant = list(vantages)
        if effect == "restricted" and self.claim is not None:
            inside = [v for v in vantages if v in self.claim.get("restricted_in", ())]
            # a restriction is expected to be visible from outside: control proves nothing
            relevant = inside or [v for v in vantages if v != "control"]
            if not relevant:
                return Verification.UNVERIFIED
        seen = [self.observations.get(v) for v in relevant]
        observed = [Observation(o["observation"]) for o in seen if o is not None]
        if any(o is Observation.AVAILABLE for o in observed):
            return Verification.CONTRADICTED
        if observed and len(observed) == len(relevant) and all(o in UNREACHABLE for o in observed):
            return Verification.CONFIRMED
        return Verification.CONFIRMED if self.confirmed_once else Verification.UNVERIFIED


@dataclass
class AppealRecord:
    appeal_id: str
    appellant_type: str
    filed_by: str
    target_items: tuple[str, ...]
    against: str  # "removal" or "decline"
    grounds: str
    filed_at: str
    prior_state: str
    outcome: str | None = None
    reviewer: str | None = None
    reversed_items: tuple[str, ...] = ()
    decided_at: str | None = None


@dataclass
class CaseFacts(GuardFacts):
    """The facts guards read and transitions change. Copied per planned transition."""

    policy: SlaPolicy
    vantages: tuple[str, ...]
    items: dict[str, ItemRecord]
    maker_id: str
    approver_id: str | None = None
    ticket: str | None = None
    sent_at: datetime | None = None
    received_at: datetime | None = None
    acknowledged_at: datetime | None = None
    due_at: datetime | None = None  # the running SLA clock's deadline, if any
    info_question: str | None = None
    info_paused_at: datetime | None = None
    appeals: list[AppealRecord] = field(default_factory=list)
    rechecks_done: int = 0
    delivery_error: str | None = None
    sla_breached: bool = False
    # Started before the trust-boundary change: plan entries as that code did (replay).
    legacy: bool = False
    # Nonces of the signed commands this request accepted: a signed command is single-use.
    used_nonces: frozenset[str] = frozenset()
    # The platform's last refusal or malformed answer, as recorded (`platform_problem`).
    platform_problem: dict[str, Any] | None = None
    # Questions of the platform the authority answered (each line of an answered question).
    answered_questions: frozenset[str] = frozenset()

    def for_planning(self) -> CaseFacts:
        """A copy that planning may change without touching these facts.

        Planning assigns fields, replaces item records' JSON values (claims, baselines,
        observations) and adds observations and appeals; it never edits a JSON value in place.
        So the containers it changes are new, and the immutable values (the policy, JSON
        records) are shared: a fraction of the cost of a deep copy, in every transition."""
        return replace(
            self,
            items={
                item_id: replace(item, observations=dict(item.observations))
                for item_id, item in self.items.items()
            },
            appeals=[replace(appeal) for appeal in self.appeals],
        )

    # guards (see docket.lifecycle.GUARDS)
    def all_items_decided(self) -> bool:
        return all(item.decided for item in self.items.values())

    def verdict(self, item: ItemRecord) -> Verification:
        """An item's verification on this request. A removal reversed on appeal is no longer
        claimed: seeing the content back is what the reversal asked for, not a disagreement
        (requests started before kept the reversed claim, and replay keeps their entries)."""
        if item.reinstated and not self.legacy:
            return Verification.NOT_APPLICABLE
        return item.verification(self.vantages)

    def has_second_notice(self) -> bool:
        return self.policy.second_notice_within is not None

    def has_disagreement(self) -> bool:
        return any(self.verdict(i) is Verification.CONTRADICTED for i in self.items.values())

    def any_effect(self) -> bool:
        return any(i.effect in EFFECT_CLAIMS for i in self.items.values())

    def fully_complied(self) -> bool:
        return all(i.effect in GONE_CLAIMS for i in self.items.values())

    def platform_has_order(self) -> bool:
        # requests started before the trust boundary closed at once when withdrawn
        return self.ticket is not None and not self.legacy

    def removals_confirmed(self) -> bool:
        if self.legacy:  # closed as complied before unverified removals were told apart
            return True
        return all(
            self.verdict(i) in (Verification.CONFIRMED, Verification.NOT_APPLICABLE)
            for i in self.items.values()
        )

    def verification_words(self) -> dict[str, str]:
        """Each item's verification as the audit log spells it."""
        if self.legacy:
            return {
                i.item_id: LEGACY_VERIFICATION_WORDS[self.verdict(i)] for i in self.items.values()
            }
        return {i.item_id: self.verdict(i).value for i in self.items.values()}

    def unverified_items(self) -> list[str]:
        """Items whose claimed removal our probes never confirmed (and did not contradict)."""
        return [
            i.item_id for i in self.items.values() if self.verdict(i) is Verification.UNVERIFIED
        ]

    def _decided_appeal(self) -> AppealRecord | None:
        if self.appeals and self.appeals[-1].outcome is not None:
            return self.appeals[-1]
        return None

    def appeal_reversed_removal(self) -> bool:
        appeal = self._decided_appeal()
        return bool(appeal and appeal.reversed_items and appeal.against == "removal")

    def appeal_reversed_decline(self) -> bool:
        appeal = self._decided_appeal()
        return bool(appeal and appeal.reversed_items and appeal.against == "decline")

    def prior_monitoring(self) -> bool:
        return bool(self.appeals and self.appeals[-1].prior_state == State.MONITORING.value)

    @property
    def open_appeal(self) -> AppealRecord | None:
        if self.appeals and self.appeals[-1].outcome is None:
            return self.appeals[-1]
        return None


@dataclass(frozen=True)
class Planned:
    """A transition computed but not yet applied: commit it once `entry` is durable."""

    spec: TransitionSpec | None  # None for the submission entry
    from_state: State | None
    to_state: State
    facts: CaseFacts
    entry: dict[str, Any]
    chain: ChainHead
    outcome: Outcome | None
    actor: Actor

    def receipt(self, request_id: str) -> Receipt:
        return Receipt(
            request_id=request_id,
            trigger=str(self.entry["event"]["action"]),
            from_state=self.from_state.value if self.from_state else "none",
            state=self.to_state.value,
            sequence=self.chain.sequence,
            hash=self.chain.head_hash,
            outcome=self.outcome.value if self.outcome else None,
        )


class Case:
    """A request's state, facts and audit chain head."""

    def __init__(self, request: RequestInput, *, legacy: bool = False) -> None:
        self.request = request
        self.request_id = request.request_id
        self.lifecycle: Lifecycle = lifecycle()  # this thread's (it keeps no state)
        self.state: State | None = None
        self.outcome: Outcome | None = None
        self.chain = ChainHead.genesis(request.request_id)
        self.facts = CaseFacts(
            policy=request.policy,
            vantages=request.vantages,
            items={
                item.item_id: ItemRecord(
                    item_id=item.item_id,
                    url=item.url,
                    category=item.category,
                    content_type=item.content_type,
                )
                for item in request.order.items
            },
            maker_id=request.order.officer,
            legacy=legacy,
        )
        self.timeline: list[dict[str, Any]] = []

    # --- queries --------------------------------------------------------------------------

    @property
    def current(self) -> State:
        if self.state is None:
            raise RuntimeError("the case has not been submitted yet")
        return self.state

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    def item_outcomes(self) -> dict[str, str]:
        return item_outcomes(self.facts)

    # --- planning -------------------------------------------------------------------------

    def plan_submission(
        self, now: datetime, baseline: Sequence[Evidence], *, signature: Signature | None = None
    ) -> Planned:
        """The `submit` entry: the order as received, the baseline probes and (for a signed
        submission) the maker's signature over the order."""
        facts = self.facts.for_planning()
        if signature is not None:
            facts.used_nonces = facts.used_nonces | {signature.nonce}
        for evidence in baseline:
            facts.items[evidence.item_id].baseline = evidence.model_dump(mode="json")
        order = self.request.order
        request_summary = {
            "authority": order.authority,
            "authority_name": self.request.authority.name,
            "reference": order.reference,
            "platform": order.platform,
            "legal_bases": [
                {
                    "basis": c.basis,
                    "instrument": _instrument(self.request, c.basis),
                    "article": c.provision,
                }
                for c in order.legal_bases
            ],
            "categories": list(order.categories),
            "territorial_scope": list(order.territorial_scope),
            "sla_policy": self.request.policy.id,
            "priority": order.priority,
            "language": order.language,
            "channel": order.channel,
            "item_count": len(order.items),
            "fingerprint": self.request.fingerprint,
            "issued_at": utc_iso(order.issued_at),
        }
        items = [
            {
                "item_id": i.item_id,
                "url": i.url,
                "platform": order.platform,
                "category": i.category,
                "content_type": i.content_type,
                "reason": i.reason,
            }
            for i in order.items
        ]
        return self._build(
            None,
            None,
            INITIAL,
            facts,
            self.request.submitted_by,
            order.statement_of_reasons,
            now,
            items=items,
            request=request_summary,
            evidence=[e.model_dump(mode="json") for e in baseline] or None,
            data={"phase": "baseline"} if baseline else None,
            signed=signature.entry() if signature is not None else None,
        )

    def check(
        self, command: Command, now: datetime, *, signature: Signature | None = None
    ) -> Planned:
        """Plan `command` or raise CommandRejected; the validator and the handler both call it."""
        return self.plan_command(command, now, signature=signature)

    def plan_command(
        self,
        command: Command,
        now: datetime,
        *,
        signature: Signature | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> Planned:
        """Plan a human or platform command. `signature`: the proof of a signed command (its
        actor and roles came from the credential); its nonce may be used only once."""
        state = self.current
        trigger = command.trigger
        actor = command.actor
        if signature is not None and signature.nonce in self.facts.used_nonces:
            raise CommandRejected(
                f"this signed {trigger} (nonce {signature.nonce}) was already used on this "
                "request: a signed command counts once; sign a new one",
                state,
                code="replayed",
            )
        if state not in sources_for(trigger):
            raise CommandRejected(f"{trigger!r} is not allowed in state {state.value!r}", state)
        roles = roles_for(trigger)
        if not actor.has_any(roles):
            raise CommandRejected(
                f"{actor.id} ({', '.join(actor.roles)}) may not {trigger}; "
                f"it needs one of the roles: {', '.join(sorted(roles))}",
                state,
                actor.roles,
            )
        facts = self.facts.for_planning()
        extra = self._apply_command(command, facts, now, state)
        if signature is not None:
            facts.used_nonces = facts.used_nonces | {signature.nonce}
            extra["signed"] = signature.entry()
        if provenance is not None:  # a platform's answer: how it came, how it was checked
            extra["data"] = {**(extra.get("data") or {}), "provenance": dict(provenance)}
        return self._fire(trigger, facts, actor, command.reason, now, **extra)

    def plan_system(
        self,
        trigger: str,
        now: datetime,
        *,
        reason: str,
        actor: Actor,
        change: Mapping[str, Any] | None = None,
        evidence: Sequence[Evidence] = (),
        data: Mapping[str, Any] | None = None,
    ) -> Planned:
        """Plan a transition the workflow itself fires (timers, deliveries, probes, polls)."""
        state = self.current
        if state not in sources_for(trigger):  # before touching facts (e.g. a late timer)
            raise CommandRejected(str(InvalidTransition(trigger, state)), state)
        facts = self.facts.for_planning()
        for key, value in (change or {}).items():
            setattr(facts, key, value)
        evidence_json = [e.model_dump(mode="json") for e in evidence]
        for record in evidence_json:
            facts.items[record["item_id"]].observations[record["vantage"]] = record
        if evidence_json and not facts.legacy:
            for item in facts.items.values():
                if facts.verdict(item) is Verification.CONFIRMED:
                    item.confirmed_once = True
        if trigger == "recheck":
            facts.rechecks_done += 1
        if trigger == "platform_problem" and data is not None:
            facts.platform_problem = dict(data.get("problem") or {})
        if trigger == "reinstated":
            appeal = facts.appeals[-1]
            for item_id in appeal.reversed_items:
                facts.items[item_id].reinstated = True
        data_out = dict(data or {})
        if evidence_json:
            disagreements = [
                {
                    "item_id": i.item_id,
                    "claim": i.effect,
                    "observations": {v: o["observation"] for v, o in i.observations.items()},
                }
                for i in facts.items.values()
                if facts.verdict(i) is Verification.CONTRADICTED
            ]
            data_out["verification"] = facts.verification_words()
            data_out["disagreements"] = disagreements
        return self._fire(
            trigger,
            facts,
            actor,
            reason,
            now,
            evidence=evidence_json or None,
            data=data_out or None,
        )

    def fork(self) -> Case:
        """A twin to plan several transitions in a row on (commit each to the twin), so they
        can be written together before any of them is committed here. Planning never changes
        the facts it starts from, so the twin shares them until its first commit."""
        twin = copy.copy(self)
        twin.timeline = list(self.timeline)
        return twin

    def commit(self, planned: Planned) -> None:
        self.facts = planned.facts
        self.state = planned.to_state
        self.chain = planned.chain
        if planned.outcome is not None:
            self.outcome = planned.outcome
        self.timeline.append(planned.entry)

    # --- what the workflow acts on ----------------------------------------------------------

    def commands_from(self, status: PlatformStatus, platform_actor: Actor) -> list[Command]:
        """What a platform's status answer says that the case does not know yet, as commands
        (an acknowledgment, effects on undecided items, a request for information: the
        request's own question and, from the trust-boundary change on, each item's)."""
        facts = self.facts
        state = self.current
        via = f"reported through the {self.request.platform.id} API (ticket {status.ticket})"
        commands: list[Command] = []
        if (
            status.acknowledged_at
            and facts.acknowledged_at is None
            and state in (State.AWAITING_ACK, State.SECOND_NOTICE, State.UNRESPONSIVE)
        ):
            commands.append(
                Acknowledge(
                    actor=platform_actor, reason=via, acknowledged_at=status.acknowledged_at
                )
            )
        effects = [
            ItemEffect.from_platform(e)
            for e in status.items
            if e.effect not in (None, "needs_more_info")
            and e.item_id in facts.items
            and not facts.items[e.item_id].decided
        ]
        if effects:
            commands.append(ReportEffect(actor=platform_actor, reason=via, effects=tuple(effects)))
        question = self._question_in(status, effects_reported=bool(effects))
        if question:
            commands.append(RequestInfo(actor=platform_actor, reason=via, question=question))
        return commands

    def _question_in(self, status: PlatformStatus, *, effects_reported: bool) -> str | None:
        """The platform's question for the authority, if it asks one the case does not hold:
        the request-level one, and (not for requests started before) each undecided item's."""
        facts = self.facts
        if facts.legacy:
            asks = status.status == "info_requested" and status.info_request
            if effects_reported or not asks or self.current not in ASKABLE:
                return None
            return status.info_request
        questions = []
        if status.status == "info_requested" and status.info_request:
            questions.append(status.info_request)
        questions += [
            f"{e.item_id}: {e.question}"
            for e in status.items
            if e.effect == "needs_more_info"
            and getattr(e, "question", None)
            and e.item_id in facts.items
            and not facts.items[e.item_id].decided
        ]
        # a question the authority answered stays in the platform's answer until it has read
        # the answer: it is not asked again
        questions = [q for q in questions if q not in facts.answered_questions]
        if not questions or facts.info_question is not None:
            return None
        # asked while awaiting acknowledgment: the acknowledgment in the same answer comes first
        if self.current not in (*ASKABLE, *WAITING_FOR_PLATFORM):
            return None
        return "\n".join(questions)

    def claimed_items(self) -> list[tuple[str, str]]:
        """(item id, URL) of every item the platform has decided on: what `verified` probes."""
        return [(i.item_id, i.url) for i in self.facts.items.values() if i.effect is not None]

    def removed_items(self) -> list[tuple[str, str]]:
        """(item id, URL) of every item said to be gone or restricted: what re-checks probe."""
        return [(i.item_id, i.url) for i in self.facts.items.values() if i.effect in EFFECT_CLAIMS]

    def reinstated_items(self) -> list[tuple[str, str]]:
        """(item id, URL) of the items the last appeal reversed: what must come back."""
        appeal = self.facts.appeals[-1]
        return [(i, self.facts.items[i].url) for i in appeal.reversed_items]

    # --- internals ------------------------------------------------------------------------

    def _fire(
        self,
        trigger: str,
        facts: CaseFacts,
        actor: Actor,
        reason: str,
        now: datetime,
        **extra: Any,
    ) -> Planned:
        state = self.current
        try:
            spec = self.lifecycle.next_state(state, trigger, facts)
        except InvalidTransition as exc:
            raise CommandRejected(str(exc).split(" (")[0], state) from None
        before = facts.due_at
        facts.due_at = next_due(spec, state, facts, now)
        if trigger == "sla_expired":
            facts.sla_breached = True
        if facts.due_at != before:
            extra["data"] = {**(extra.get("data") or {}), "due_at": _iso(facts.due_at)}
        return self._build(spec, state, spec.dest, facts, actor, reason, now, **extra)

    def _build(
        self,
        spec: TransitionSpec | None,
        from_state: State | None,
        to_state: State,
        facts: CaseFacts,
        actor: Actor,
        reason: str,
        now: datetime,
        *,
        items: list[dict[str, Any]] | None = None,
        evidence: list[dict[str, Any]] | None = None,
        request: dict[str, Any] | None = None,
        appeal: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        signed: dict[str, Any] | None = None,
    ) -> Planned:
        outcome = spec.outcome if spec else None
        action = spec.trigger if spec else "submit"
        if outcome is not None:
            data = dict(data or {})
            data["outcome"] = outcome.value
            data["item_outcomes"] = item_outcomes(facts)
            if not facts.legacy:
                data["item_verification"] = facts.verification_words()
                unverified = facts.unverified_items()
                if unverified:
                    data["unverified"] = unverified
        entry, chain = build_entry(
            self.chain,
            timestamp=now,
            action=action,
            from_state=from_state.value if from_state else None,
            to_state=to_state.value,
            actor_id=actor.id,
            actor_roles=[r.value for r in actor.roles],
            organization=actor.organization,
            reason=reason,
            items=items,
            evidence=evidence,
            request=request,
            appeal=appeal,
            data=data,
            signed=signed,
        )
        return Planned(spec, from_state, to_state, facts, entry, chain, outcome, actor)

    def _apply_command(
        self, command: Command, facts: CaseFacts, now: datetime, state: State
    ) -> dict[str, Any]:
        """Check the command against the facts and change the copy; return entry parts."""
        actor = command.actor
        makers = {facts.maker_id, self.request.submitted_by.id}
        if command.trigger == "approve" and actor.id in makers:
            raise CommandRejected(
                f"{actor.id} made this request and cannot approve it; "
                "another approver must (four-eyes rule)",
                state,
            )
        if command.trigger == "approve":
            facts.approver_id = actor.id
        if isinstance(command, Acknowledge):
            facts.acknowledged_at = command.acknowledged_at or now
            return {"data": {"acknowledged_at": utc_iso(facts.acknowledged_at)}}
        if isinstance(command, ReportEffect):
            return {"items": self._apply_effects(command, facts, now, state)}
        if isinstance(command, RequestInfo):
            facts.info_question = command.question
            facts.info_paused_at = now
            return {"data": {"question": command.question}}
        if isinstance(command, ProvideInfo):
            if facts.info_paused_at and facts.due_at:
                facts.due_at = facts.due_at + (now - facts.info_paused_at)
            if facts.info_question is not None:
                facts.answered_questions = facts.answered_questions | set(
                    facts.info_question.split("\n")
                )
            facts.info_question = None
            facts.info_paused_at = None
            return {"data": {"answer": command.answer}}
        if isinstance(command, FileAppeal):
            return {"appeal": self._apply_appeal(command, facts, now, state)}
        if isinstance(command, DecideAppeal):
            return {"appeal": self._apply_decision(command, facts, now, state)}
        if command.trigger == "renotify":
            disputed = [
                i for i in facts.items.values() if facts.verdict(i) is Verification.CONTRADICTED
            ]
            for item in disputed:
                item.claim = None  # the platform must decide again
                item.claim_by = None
                item.observations = {}
                item.confirmed_once = False
            return {"data": {"items": [i.item_id for i in disputed]}}
        return {}

    def _apply_effects(
        self, command: ReportEffect, facts: CaseFacts, now: datetime, state: State
    ) -> list[dict[str, Any]]:
        reported = []
        for index, effect in enumerate(command.effects):
            item = facts.items.get(effect.item_id)
            if item is None:
                raise CommandRejected(
                    f"effects[{index}].item_id: unknown item {effect.item_id!r}; "
                    f"items: {', '.join(facts.items)}",
                    state,
                )
            if item.decided:
                raise CommandRejected(
                    f"effects[{index}]: item {effect.item_id!r} was already decided "
                    f"({item.effect} by {item.claim_by})",
                    state,
                )
            record = _effect_json(effect, now)
            item.claim = record
            item.claim_by = command.actor.id
            reported.append(record)
        if facts.acknowledged_at is None:
            facts.acknowledged_at = now  # an effect implies receipt was acknowledged
        return reported

    def _apply_appeal(
        self, command: FileAppeal, facts: CaseFacts, now: datetime, state: State
    ) -> dict[str, Any]:
        kinds = set()
        for index, item_id in enumerate(command.target_items):
            item = facts.items.get(item_id)
            if item is None:
                raise CommandRejected(
                    f"target_items[{index}]: unknown item {item_id!r}; "
                    f"items: {', '.join(facts.items)}",
                    state,
                )
            if item.effect in EFFECT_CLAIMS:
                kinds.add("removal")
            elif item.effect == "declined":
                kinds.add("decline")
            else:
                raise CommandRejected(
                    f"target_items[{index}]: item {item_id!r} has no appealable decision "
                    f"(platform decision: {item.effect or 'none'})",
                    state,
                )
        if len(kinds) != 1:
            raise CommandRejected("target_items: appeal removals and declines separately", state)
        against = kinds.pop()
        allowed = {"removal": {"content_owner", "platform"}, "decline": {"authority"}}[against]
        if command.appellant_type not in allowed:
            raise CommandRejected(
                f"appellant_type: a {command.appellant_type} cannot appeal a {against}; "
                f"allowed: {', '.join(sorted(allowed))}",
                state,
            )
        needed = {
            "content_owner": Role.APPELLANT,
            "authority": Role.OFFICER,
            "platform": Role.PLATFORM_LIAISON,
        }[command.appellant_type]
        if needed not in command.actor.roles:
            raise CommandRejected(
                f"{command.actor.id} files as {command.appellant_type} but lacks the role "
                f"{needed.value}",
                state,
            )
        appeal = AppealRecord(
            appeal_id=f"{self.request_id}-appeal-{len(facts.appeals) + 1}",
            appellant_type=command.appellant_type,
            filed_by=command.actor.id,
            target_items=command.target_items,
            against=against,
            grounds=command.grounds,
            filed_at=utc_iso(now),
            prior_state=state.value,
        )
        facts.appeals.append(appeal)
        return {
            "appeal_id": appeal.appeal_id,
            "appellant_type": appeal.appellant_type,
            "against": against,
            "target_items": list(appeal.target_items),
            "grounds": appeal.grounds,
            "filed_at": appeal.filed_at,
        }

    def _apply_decision(
        self, command: DecideAppeal, facts: CaseFacts, now: datetime, state: State
    ) -> dict[str, Any]:
        appeal = facts.open_appeal
        if appeal is None:
            raise CommandRejected("there is no open appeal to decide", state)
        reviewer = command.actor.id
        deciders = {
            facts.maker_id,
            self.request.submitted_by.id,
            facts.approver_id,
            appeal.filed_by,
        } | {facts.items[i].claim_by for i in appeal.target_items}
        if reviewer in deciders:
            raise CommandRejected(
                f"{reviewer} took part in the decision under appeal (maker, approver, "
                "appellant or platform decider) and cannot review it",
                state,
            )
        if command.outcome == "reversed":
            reversed_items = appeal.target_items
        else:
            reversed_items = command.reversed_items
        unknown = [i for i in reversed_items if i not in appeal.target_items]
        if unknown:
            raise CommandRejected(
                f"reversed_items: {', '.join(unknown)} not under appeal "
                f"(appealed: {', '.join(appeal.target_items)})",
                state,
            )
        appeal.outcome = command.outcome
        appeal.reviewer = reviewer
        appeal.reversed_items = tuple(reversed_items)
        appeal.decided_at = utc_iso(now)
        if appeal.against == "decline":
            for item_id in reversed_items:  # the platform must decide these again
                facts.items[item_id].claim = None
                facts.items[item_id].claim_by = None
                facts.items[item_id].confirmed_once = False
        return {
            "appeal_id": appeal.appeal_id,
            "outcome": appeal.outcome,
            "reversed_items": list(appeal.reversed_items),
            "decided_at": appeal.decided_at,
            "reviewer": reviewer,
            "against": appeal.against,
            "appellant_type": appeal.appellant_type,
            "filed_at": appeal.filed_at,
        }


def item_outcomes(facts: CaseFacts) -> dict[str, str]:
    """Per-item outcome: never merges "no response" with "declined"."""
    out: dict[str, str] = {}
    for item in facts.items.values():
        effect = item.effect
        if item.reinstated:
            out[item.item_id] = "reinstated"
        elif effect is None or effect == "needs_more_info":
            out[item.item_id] = "no_response"
        elif facts.verdict(item) is Verification.CONTRADICTED:
            out[item.item_id] = "still_available"
        else:
            out[item.item_id] = effect
    return out


# States in which the platform may ask the authority for more information.
ASKABLE = (State.ACKNOWLEDGED, State.OVERDUE)


def notices_for(planned: Planned, request_id: str, *, ticket: str | None) -> list[Notice]:
    """The notices to the platform that a committed transition asks for (sent after its
    entry is durable): a second notice, a re-notice, the authority's answer to a question,
    a reinstatement or a renewed request after an appeal, a withdrawal."""
    entry = planned.entry
    action = entry["event"]["action"]
    dest = planned.to_state

    def notice(kind: str, message: str, items: Sequence[str] = ()) -> list[Notice]:
        return [Notice(kind=kind, request_id=request_id, message=message, items=list(items))]

    if action == "sla_expired" and dest is State.SECOND_NOTICE:
        return notice("second_notice", "Second notice: no response within the SLA")
    if action == "renotify":  # names the items the platform must decide again
        items = entry["docket"].get("data", {}).get("items", [])
        return notice("renotify", entry["event"].get("reason", ""), items)
    if action == "provide_info":
        return notice("info_provided", entry["docket"]["data"]["answer"])
    if action == "decide_appeal" and dest is State.REINSTATING:
        reversed_items = entry["docket"]["appeal"]["reversed_items"]
        return notice("reinstatement", "Appeal reversed: reinstate", reversed_items)
    if action == "decide_appeal" and dest is State.ACKNOWLEDGED:
        reversed_items = entry["docket"]["appeal"]["reversed_items"]
        return notice("renotify", "Appeal against the decline reversed", reversed_items)
    if action == "withdraw" and ticket is not None:
        return notice("withdrawal", entry["event"].get("reason", "withdrawn"))
    return []


def _effect_json(effect: ItemEffect, now: datetime) -> dict[str, Any]:
    record: dict[str, Any] = {
        "item_id": effect.item_id,
        "effect": effect.effect,
        "restricted_in": list(effect.restricted_in),
        "effect_at": utc_iso(effect.effect_at or now),
    }
    for key in ("reason", "platform_ref", "uploader_notified"):
        value = getattr(effect, key)
        if value is not None:
            record[key] = value
    return record


def next_due(
    spec: TransitionSpec, source: State, facts: CaseFacts, now: datetime
) -> datetime | None:
    """The SLA clock after a transition. Clocks start at receipt; no policy clock, no deadline.

    - delivered: respond by receipt + respond_within
    - sla_expired into second_notice: the second notice's own window starts now
    - acknowledged (first time): the effect is due at receipt + effect_within
    - acknowledged again (re-notified, decline reversed): effect_within from now
    - provide_info: the time spent waiting for the authority was already added (paused); if
      the info was asked for while overdue, the clock resumes expired (due now)
    - info_requested keeps the deadline (paused); other states have no running clock
    """
    policy = facts.policy
    dest = spec.dest
    if dest is State.AWAITING_ACK:
        start = facts.received_at or now
        return start + policy.respond_within if policy.respond_within else None
    if dest is State.SECOND_NOTICE:
        return now + policy.second_notice_within if policy.second_notice_within else None
    if dest is State.ACKNOWLEDGED:
        if spec.trigger == "provide_info" and facts.due_at is None and policy.effect_within:
            return now  # asked while overdue: the paused clock had already run out
        if spec.trigger == "provide_info" or source is State.ACKNOWLEDGED:
            return facts.due_at
        if not policy.effect_within:
            return None
        if source in (State.AWAITING_ACK, State.SECOND_NOTICE, State.UNRESPONSIVE):
            return (facts.received_at or now) + policy.effect_within
        return now + policy.effect_within
    if dest is State.INFO_REQUESTED:
        return facts.due_at
    return None


def _iso(moment: datetime | None) -> str | None:
    return utc_iso(moment) if moment else None


def _instrument(request: RequestInput, basis_id: str) -> str:
    for basis in request.legal_bases:
        if basis.id == basis_id:
            return basis.instrument
    return basis_id
