"""The `AuthorityRequest` workflow: one durable run per authority request.

It drives a pure `docket.case.Case` through the lifecycle (`docket.lifecycle`):
- every human or platform event is a Temporal Update named after its trigger, with a
  validator that runs the same planning code as the handler (a refused command leaves no
  history event and no audit entry);
- every transition's audit entry is written by an activity and is durable *before* the
  transition is applied and before any side effect it describes (fail closed); an Update
  returns its receipt (new state, sequence, hash) only then;
- SLA timers, polling, delivery, probes and notices run in the main loop.

Which activity writes an entry (see `_clock`): a command's entry is stamped with
`workflow.now()` and written by a regular activity, whose input history fixes. A transition
the main loop makes from something history already holds (a platform answer, probe evidence,
a deadline) is stamped with a time history also holds (when the main loop asked for that
answer, or the deadline) and written by a *local* activity: cheaper (no extra activity task
and workflow task), and safe because a re-run of the task after a crash plans the very same
entry. Commands wait until the main loop has recorded what it already received, so a
re-run task also assigns the same sequence numbers in the same order.

Workflow code is deterministic: times come from history or `workflow.now()`, all I/O is in
activities.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.audit import AuditActivities
    from activities.config import DeploymentActivities
    from activities.platform import PlatformActivities
    from docket import temporal_names as names
    from docket.case import (
        Case,
        CommandRejected,
        Planned,
        RequestInput,
        RequestResult,
        Signature,
        notices_for,
    )
    from docket.credentials import TrustRoots
    from docket.intake import (
        CommandRefusal,
        Deployment,
        StartRefused,
        TrustSnapshot,
        admit_command,
        admit_submission,
        parse_signed,
    )
    from docket.lifecycle import HUMAN_TRIGGERS, Role, State, allowed_triggers
    from docket.models import (
        SYSTEM_ACTOR,
        Actor,
        Command,
        Receipt,
        parse_command,
        utc_iso,
    )
    from docket.platform_protocol import DeliveryReceipt, Notice, PollResult
    from docket.reference import format_loc
    from docket.statement import SignedCommand
    from docket.validation import Issue
    from docket.verification import Evidence, Observation
    from docket.views import details_markdown, status_view

AUDIT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=["PlatformRejected", "SignatureRejected"],
)
CONFIG_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
POLL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
PROBE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
NOTICE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=["PlatformRejected", "SignatureRejected"],
)

# Running workflows started before this change keep writing every entry with a regular
# activity stamped with `workflow.now()` (their histories must replay unchanged).
LOCAL_AUDIT_PATCH = "audit-local-write-at-cause-time"
# Requests started before the workflow became the trust boundary carried a resolved input
# and plan their entries with that code's vocabulary; from this change on, the workflow
# admits its start input itself (docket.intake) and records per-item verification.
TRUST_BOUNDARY_PATCH = "trust-boundary"
# Running workflows started before this change write each transition a poll reports on its
# own; from this change on, the transitions of one poll are written together.
ONE_WRITE_PER_POLL_PATCH = "audit-one-write-per-poll"
# From this change on, no time that goes into an entry (or a deadline) is read from the clock of
# a workflow activation that delivers a local activity's result: replay does not reproduce it
# (see `_clock`). Running workflows started before keep the earlier times, which they wrote.
CLOCK_FROM_HISTORY_PATCH = "audit-clock-from-history"
# From this change on, a new request records one patch marker that stands for every change
# above and COMMAND_BARRIER_TIMER_PATCH below (each marker also upserts Temporal's
# TemporalChangeVersion search attribute), upserts search attributes only when one changed (a
# re-check does not move the state), and keeps the fingerprint memo its start set when it is
# right: fewer history events and visibility writes.
FEWER_EVENTS_PATCH = "fewer-events"
# A deadline already due when the main loop waits still goes through a timer (this short), so it
# fires in an activation whose time history holds, never in the local write's activation.
DUE_DEADLINE_WAIT = timedelta(milliseconds=1)
# From this change on, a command waits for the main loop behind a timer, not a local activity:
# a local activity's result may reach the workflow a task late live (a query was answered while
# it ran) but not on replay, which then ran the command first (a nondeterminism error). Timers
# fire where history says. Running workflows started before keep the local activity.
COMMAND_BARRIER_TIMER_PATCH = "command-barrier-timer"
COMMAND_BARRIER_WAIT = timedelta(milliseconds=1)

POLL_BACKOFF_DOUBLINGS = 6
POLL_BACKOFF_CAP = timedelta(hours=1)

# States in which the platform may act, so a platform with an API is polled.
POLLED = frozenset(
    {State.AWAITING_ACK, State.SECOND_NOTICE, State.UNRESPONSIVE, State.ACKNOWLEDGED, State.OVERDUE}
)


_UNSET = object()  # a search attribute never upserted by this run

# A command admitted: (trigger, statement, signature, time), the trust roots, the result.
_Admitted = tuple[tuple[str, str, str, datetime], TrustRoots, tuple[Command, Signature]]


@dataclass(frozen=True)
class Deadline:
    at: datetime
    label: str
    fire: Callable[[datetime], Awaitable[None]]  # called with `at`


@workflow.defn(name=names.WORKFLOW_NAME)
class AuthorityRequest:
    @workflow.init
    def __init__(self, *start: Any) -> None:
        # Nothing about the start input is trusted or even parsed here: `run` admits it (an
        # exception here would fail the workflow task over and over instead of the workflow).
        self._case: Case | None = None
        self._legacy = False  # started before the trust boundary (set at the start of `run`)
        self._trust: TrustSnapshot | None = None  # the operator's trust roots, as last read
        self._last_problem: str | None = None  # the platform problem recorded last
        self._trust_read_at = datetime.min
        self._lock = asyncio.Lock()
        self._version = 0  # bumps on every committed transition
        self._quiet_polls = 0  # polls in a row that found nothing new
        self._outbox: list[Notice] = []
        self._decided_at: datetime | None = None
        self._local_audit = False  # set by the patch check at the start of `run`
        self._clock_from_history = False  # likewise
        self._barrier_timer = False  # likewise
        self._fewer_events = False  # likewise
        # the command admitted last: (trigger, statement, signature, time), trust roots, result
        self._last_admitted: _Admitted | None = None
        self._published: dict[str, Any] = {}  # search attribute values last upserted
        # What can wake the main loop while it waits: "commands" (only a command can),
        # "anything" (an activity result or a timer too); None while it handles what it got.
        self._main_loop_wakes_for: Literal["commands", "anything"] | None = "commands"
        for trigger in HUMAN_TRIGGERS:
            workflow.set_update_handler(
                trigger,
                self._handler(trigger),
                validator=self._validator(trigger),
            )

    @property
    def case(self) -> Case:
        if self._case is None:
            raise RuntimeError("the request has not been admitted yet")
        return self._case

    @property
    def request(self) -> RequestInput:
        return self.case.request

    # --- run -----------------------------------------------------------------------------

    @workflow.run
    async def run(self, *start: Any) -> RequestResult:
        """The request's life, shielded from Temporal's cancellation: any client could ask
        for it (no signature, no identity), and a cancelled run would end the request with
        nothing in its audit log. A request closes only through its lifecycle (withdraw,
        escalate, close...), on the record; a cancellation request is logged and ignored."""
        life = asyncio.ensure_future(self._live(start))
        while True:
            try:
                return await asyncio.shield(life)
            except asyncio.CancelledError:
                if life.done():
                    raise
                workflow.logger.warning(
                    "cancellation requested by a Temporal client: ignored; a request closes "
                    "only through its lifecycle (withdraw, escalate, close), on the record"
                )

    async def _live(self, start: Sequence[Any]) -> RequestResult:
        self._fewer_events = workflow.patched(FEWER_EVENTS_PATCH)
        if self._fewer_events:  # every earlier change applies: one marker instead of four
            self._local_audit = self._clock_from_history = self._barrier_timer = True
            self._legacy = False
            self._published = _search_attributes_at_start()
        else:
            self._local_audit = workflow.patched(LOCAL_AUDIT_PATCH)
            self._clock_from_history = self._local_audit and workflow.patched(
                CLOCK_FROM_HISTORY_PATCH
            )
            self._legacy = not workflow.patched(TRUST_BOUNDARY_PATCH)
            self._barrier_timer = workflow.patched(COMMAND_BARRIER_TIMER_PATCH)
        signature: Signature | None = None
        if self._legacy:
            request = self._legacy_input(start)
        else:
            request, signature = await self._admit(start)
        self._case = Case(request, legacy=self._legacy)
        self.platform_actor = Actor(
            id=f"platform:{request.platform.id}",
            roles=(Role.PLATFORM_LIAISON,),
            organization=request.platform.name,
        )
        asked_at = workflow.now()
        baseline: list[Evidence] = []
        if self._legacy or request.platform.baseline_probes:
            baseline = await self._probe(
                [(i.item_id, i.url) for i in request.order.items], ("control",), baseline=True
            )
        now, local = self._clock(asked_at)
        planned = self.case.plan_submission(now, baseline, signature=signature)
        await self._record(planned, local=local)
        while not self.case.closed or self._outbox:
            await self._step()
        with self._waiting(commands_only=True):
            await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    @staticmethod
    def _legacy_input(start: Sequence[Any]) -> RequestInput:
        """A request started before the trust boundary carried its resolved input; its
        history replays with it as it ran (no new request is admitted this way)."""
        return RequestInput.model_validate(start[0])

    async def _admit(self, start: Sequence[Any]) -> tuple[RequestInput, Signature]:
        """Check the signed submission (signature, credential, order) against the operator's
        trust roots and reference data; refuse it (the workflow fails, non-retryable, every
        problem named) if anything is wrong."""
        try:
            if len(start) != 1 or not isinstance(start[0], dict):
                raise StartRefused(
                    [Issue("(start input)", f"expected one JSON object, got {_shape(start)}")]
                )
            try:
                signed = parse_signed(start[0])
            except CommandRefusal as exc:
                raise StartRefused([Issue("(start input)", str(exc))]) from None
            deployment: Deployment = await workflow.execute_activity_method(
                DeploymentActivities.load_deployment,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=CONFIG_RETRY,
                summary="load the operator's reference data and trust roots",
            )
            self._hold_trust(deployment.trust)
            request, signature = admit_submission(
                signed, deployment, workflow_id=workflow.info().workflow_id, now=workflow.now()
            )
        except StartRefused as exc:
            raise ApplicationError(
                str(exc),
                {"issues": [{"path": i.path, "problem": i.message} for i in exc.issues]},
                type="InvalidRequest",
                non_retryable=True,
            ) from None
        if not self._fewer_events or _memo_fingerprint() != request.fingerprint:
            # any client may start a run with any memo: the admitted request's own fingerprint
            # replaces it (docket.client.submit compares it to find a conflicting submission)
            workflow.upsert_memo({"fingerprint": request.fingerprint})
        return request, signature

    def _hold_trust(self, snapshot: TrustSnapshot) -> None:
        self._trust = snapshot
        self._trust_read_at = workflow.now()

    async def _fresh_trust(self) -> TrustRoots:
        """The trust roots, read again when the ones held are older than their max age (or
        there are none yet: a request started before signed commands)."""
        held = self._trust
        if held is None or workflow.now() - self._trust_read_at > held.max_age:
            snapshot: TrustSnapshot = await workflow.execute_activity_method(
                DeploymentActivities.load_trust,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=CONFIG_RETRY,
                summary="read the operator's trust roots",
            )
            self._hold_trust(snapshot)
            return snapshot.trust
        return held.trust

    @contextlib.contextmanager
    def _waiting(self, *, commands_only: bool = False) -> Iterator[None]:
        """Mark the main loop as waiting for the outside world (an activity, a timer, a
        command). Commands run only then, so whatever the main loop received in a workflow
        task is recorded before any command of that task takes the next sequence number."""
        self._main_loop_wakes_for = "commands" if commands_only else "anything"
        try:
            yield
        finally:
            self._main_loop_wakes_for = None

    def _clock(
        self, cause_at: datetime | None, *, received_at: datetime | None = None
    ) -> tuple[datetime, bool]:
        """The time to stamp a transition with, and whether a local activity may write it.

        A local activity writes before its workflow task completes; if the worker dies then,
        the task runs again, later, and must plan the *identical* entry. So a local write is
        used only when the transition's time comes from history (`cause_at`: the workflow time
        at which the main loop asked for the answer that causes it, in a task that has
        completed, or the deadline that fired), never from this task's `workflow.now()`,
        which differs between attempts. One clock (the workflow's) for every entry, never
        earlier than the previous entry, so a chain's timestamps do not go backwards.

        Nor is the clock read right after awaiting a local activity (`_clock_from_history`):
        live, the SDK may hand its result over in a *later* workflow task (when a query was
        answered, or the task heartbeated, while it ran) and `workflow.now()` is that task's
        start; replay hands it over where its marker is, at the marker's completion time. So
        a command is stamped when its Update arrived (`received_at`, before the ordering
        barrier), not when its handler plans."""
        if self._local_audit and cause_at is not None:
            at, local = cause_at, True
        elif self._clock_from_history and received_at is not None:
            at, local = received_at, False
        else:
            return workflow.now(), False
        if self.case.timeline:
            last = datetime.fromisoformat(self.case.timeline[-1]["@timestamp"])
            at = max(at, last)
        return at, local

    def _entered_at(self) -> datetime | None:
        """When the case entered its current state, as its last entry says (history fixes
        it); None before `CLOCK_FROM_HISTORY_PATCH` (callers then read `workflow.now()`)."""
        if not self._clock_from_history or not self.case.timeline:
            return None
        return datetime.fromisoformat(self.case.timeline[-1]["@timestamp"])

    async def _step(self) -> None:
        if self._outbox:
            await self._send_notices()
            return
        state = self.case.current
        if state is State.DELIVERING:
            await self._deliver()
            return
        if state is State.VERIFYING:
            await self._verify("verified", self.case.claimed_items(), asked_at=self._entered_at())
            return
        if state is State.REINSTATING:
            await self._check_reinstatement()
            return
        await self._wait(state)

    async def _wait(self, state: State) -> None:
        """Wait for a command, the next deadline, or the next poll of the platform."""
        version = self._version
        deadline = self._deadline(state)
        poll_every = self._poll_interval()
        polling = self.request.platform.api and state in POLLED
        now = workflow.now()
        timeout: timedelta | None = None
        label = ""
        if deadline is not None:
            due = DUE_DEADLINE_WAIT if self._clock_from_history else timedelta(0)
            timeout, label = max(deadline.at - now, due), deadline.label
        if polling and (timeout is None or poll_every < timeout):
            timeout, label = poll_every, f"poll {self.request.platform.id}"
        try:
            with self._waiting(commands_only=timeout is None):
                await workflow.wait_condition(
                    lambda: self._version != version or bool(self._outbox),
                    timeout=timeout,
                    timeout_summary=label or None,
                )
            return
        except TimeoutError:
            pass
        if deadline is not None and workflow.now() >= deadline.at:
            await deadline.fire(deadline.at)
        elif polling:
            await self._poll()

    def _poll_interval(self) -> timedelta:
        """The platform's interval, doubled after each poll that found nothing new (at most
        64x, at most an hour, never below the base), so a platform that stays silent for days
        does not fill the history; any transition resets it."""
        base = self.request.platform.poll_interval
        backed_off = base * (1 << min(self._quiet_polls, POLL_BACKOFF_DOUBLINGS))
        return max(base, min(backed_off, POLL_BACKOFF_CAP))

    def _deadline(self, state: State) -> Deadline | None:
        facts = self.case.facts
        policy = self.request.policy
        if state is State.AWAITING_ACK and facts.due_at is not None:
            return Deadline(facts.due_at, "SLA: respond", lambda at: self._sla("respond", at))
        if state is State.SECOND_NOTICE and facts.due_at is not None:
            return Deadline(
                facts.due_at, "SLA: second notice", lambda at: self._sla("second_notice", at)
            )
        if state is State.ACKNOWLEDGED and facts.due_at is not None and policy.effect_within:
            return Deadline(facts.due_at, "SLA: effect", lambda at: self._sla("effect", at))
        decided = self._decided_at
        if state is State.MONITORING and decided is not None:
            if facts.rechecks_done < len(policy.rechecks):
                at = decided + policy.rechecks[facts.rechecks_done]
                return Deadline(at, f"re-check {facts.rechecks_done + 1}", self._recheck)
            last = max([policy.appeal_window, *policy.rechecks])
            return Deadline(decided + last, "appeal window ends", self._complete_monitoring)
        if state is State.DECLINED and decided is not None:
            return Deadline(
                decided + policy.appeal_window, "appeal window ends", self._close_appeal_window
            )
        return None

    # --- transitions ---------------------------------------------------------------------

    async def _record(self, planned: Planned, *, local: bool = False) -> Receipt:
        """Make the entry durable, then apply the transition (fail closed)."""
        return (await self._record_all([planned], local=local))[0]

    async def _record_all(self, batch: Sequence[Planned], *, local: bool) -> list[Receipt]:
        """Make the entries of transitions planned in a row durable in one write, then apply
        them in order (fail closed: none is applied unless all are written)."""
        await self._write_audit([planned.entry for planned in batch], local=local)
        for planned in batch:
            self.case.commit(planned)
            self._version += 1
            self._after(planned)
        self._quiet_polls = 0
        self._publish()
        return [planned.receipt(self.case.request_id) for planned in batch]

    async def _write_audit(self, entries: list[dict[str, Any]], *, local: bool) -> None:
        """Write entries durably, in one write; nothing follows until they are written.

        By a regular activity unless `local`: the entries are then fixed in history when the
        activity is scheduled, so every retry (even after a worker crash) writes identical
        entries; needed for entries stamped with `workflow.now()`, which a re-run task would
        plan differently. By a local activity when `_clock` allowed it: the entries' content
        comes from history, so a re-run of this task writes an identical copy, which readers
        fold. A failing local write keeps the task retrying: the workflow does not advance, and
        each failed attempt is logged by the worker."""
        first, last = entries[0]["event"], entries[-1]["event"]
        numbers = f"#{first['sequence']}" + (f"-#{last['sequence']}" if last is not first else "")
        summary = f"audit {numbers} {', '.join(e['event']['action'] for e in entries)}"
        timeout = timedelta(seconds=30)
        if local:
            await workflow.execute_local_activity_method(
                AuditActivities.write_entries,
                entries,
                start_to_close_timeout=timeout,
                retry_policy=AUDIT_RETRY,
                summary=summary,
            )
            return
        await workflow.execute_activity_method(
            AuditActivities.write_entries,
            entries,
            start_to_close_timeout=timeout,
            heartbeat_timeout=timedelta(seconds=5),
            retry_policy=AUDIT_RETRY,
            summary=summary,
        )

    def _after(self, planned: Planned) -> None:
        """Queue the side effects a committed transition asks for (after its entry)."""
        self._outbox += notices_for(planned, self.case.request_id, ticket=self.case.facts.ticket)
        if planned.spec is not None and planned.spec.trigger == "verified":
            # re-checks and the appeal window count from the decision's entry
            self._decided_at = (
                datetime.fromisoformat(planned.entry["@timestamp"])
                if self._clock_from_history
                else workflow.now()
            )

    async def _apply(
        self,
        command: Command,
        *,
        at: datetime | None = None,
        received_at: datetime | None = None,
        signature: Signature | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> Receipt:
        """Apply a command: from an Update (`at` None; `received_at`: when it arrived;
        `signature`: its proof) or from a platform's answer to a poll (`at`: the workflow time
        at which the main loop asked; `provenance`: how the answer came, how authenticated)."""
        async with self._lock:
            now, local = self._clock(at, received_at=received_at)
            try:
                planned = self.case.plan_command(
                    command, now, signature=signature, provenance=provenance
                )
            except CommandRejected as exc:  # the state moved since validation
                raise _rejection(exc) from None
            return await self._record(planned, local=local)

    async def _apply_in_one_write(
        self,
        commands: Sequence[Command],
        *,
        at: datetime,
        provenance: dict[str, Any] | None = None,
    ) -> None:
        """Apply what one answer of the platform reports (e.g. acknowledged *and* decided):
        each command planned on the state the previous one leads to, all entries written
        together, then committed. One write instead of one per transition, and none of the
        answer is applied until all of it is durable. A command the state no longer allows is
        skipped, as when they are applied one by one."""
        async with self._lock:
            now, local = self._clock(at)
            twin = self.case.fork()
            batch: list[Planned] = []
            for command in commands:
                try:
                    planned = twin.plan_command(command, now, provenance=provenance)
                except CommandRejected as exc:
                    workflow.logger.info("platform report not applied: %s", _rejection(exc))
                    continue
                twin.commit(planned)
                batch.append(planned)
            if batch:
                await self._record_all(batch, local=local)

    async def _fire(
        self, trigger: str, reason: str, *, at: datetime | None, **kwargs: Any
    ) -> Planned | None:
        """A system transition; `at` is the time of its cause when history holds it.

        A command may have moved the request while the main loop waited for what causes this
        one (probes, a timer, the lock): then it no longer applies and is dropped, and the
        main loop looks again at the state it finds (None). Never a failed workflow task."""
        async with self._lock:
            now, local = self._clock(at)
            try:
                planned = self.case.plan_system(
                    trigger, now, reason=reason, actor=SYSTEM_ACTOR, **kwargs
                )
            except CommandRejected as exc:
                workflow.logger.info("%s no longer applies: %s", trigger, exc)
                return None
            await self._record(planned, local=local)
            return planned

    # --- updates -------------------------------------------------------------------------

    def _handler(self, trigger: str) -> Callable[..., Awaitable[Receipt]]:
        async def handler(*payload: Any) -> Receipt:
            received_at = workflow.now()  # before the barrier (a local activity): see _clock
            if self._local_audit:
                await self._after_main_loop()
            if _unsigned(payload):  # accepted before signed commands: their replay only
                return await self._apply(_parse(trigger, payload), received_at=received_at)
            # Decide on trust roots no older than their max age: a key revoked meanwhile is
            # refused here (the Update fails; no entry, no change).
            trust = await self._fresh_trust()
            command, signature = self._admit_command(trigger, payload, trust)
            return await self._apply(command, received_at=received_at, signature=signature)

        handler.__name__ = trigger
        return handler

    async def _after_main_loop(self) -> None:
        """Let the main loop record what this workflow task delivered before a command plans.

        The SDK runs Update handlers *before* it hands the task's activity results and fired
        timers to the main loop. A local audit write made in an earlier attempt of this task
        (the worker died before completing it) must be planned again identically, at the same
        sequence number, even if a command arrived in between. So, unless only a command can
        wake the main loop (no activity or timer pending: nothing in this task can move it),
        a handler first waits for a 1 ms timer, which fires in a later workflow task, after
        the main loop has taken this task's results, and then until the main loop waits again.
        (Before `COMMAND_BARRIER_TIMER_PATCH`, a no-op local activity: its result could come a
        task later live than on replay, so replay could run the command first.)"""
        if self._main_loop_wakes_for == "commands":
            return
        if self._barrier_timer:
            await workflow.sleep(COMMAND_BARRIER_WAIT, summary="let the main loop record first")
        else:
            await workflow.execute_local_activity_method(
                AuditActivities.order_barrier,
                start_to_close_timeout=timedelta(seconds=10),
                summary="let the main loop record first",
            )
        await workflow.wait_condition(lambda: self._main_loop_wakes_for is not None)

    def _validator(self, trigger: str) -> Callable[..., None]:
        def validator(*payload: Any) -> None:
            case = self._case
            if case is None or case.state is None:
                raise ApplicationError(
                    "the request is still being submitted; retry in a moment",
                    type="NotReady",
                    non_retryable=True,
                )
            if self._trust is None:
                # A request started before signed commands holds no trust roots yet: the
                # handler reads them and checks the command fully before anything happens.
                _signed_or_refused(trigger, payload, case)
                return
            command, signature = self._admit_command(trigger, payload, self._trust.trust)
            try:
                case.check(command, workflow.now(), signature=signature)
            except CommandRejected as exc:
                raise _rejection(exc) from None

        validator.__name__ = f"validate_{trigger}"
        return validator

    def _admit_command(
        self, trigger: str, payload: Sequence[Any], trust: TrustRoots
    ) -> tuple[Command, Signature]:
        """The signed command as the lifecycle's command, or ApplicationError saying why not
        (with the state and what is allowed, and the identity refusal's code)."""
        case = self.case
        signed = _signed_or_refused(trigger, payload, case)
        request = case.request
        now = workflow.now()
        # The validator and then the handler admit the same command in the same activation:
        # the check is pure, so the handler takes the validator's answer (one signature check
        # per command, not two). Replay runs no validator and checks in the handler.
        key = (trigger, signed.statement, signed.signature, now)
        last = self._last_admitted
        if last is not None and last[0] == key and last[1] is trust:
            return last[2]
        try:
            admitted = admit_command(
                trigger,
                signed,
                trust,
                request_id=case.request_id,
                parties=(("authority", request.order.authority), ("platform", request.platform.id)),
                now=now,
            )
        except CommandRefusal as exc:
            raise _refused(exc, case) from None
        self._last_admitted = (key, trust, admitted)
        return admitted

    @workflow.query
    def status(self) -> dict[str, Any]:
        """State, deadlines, items (claim vs observation), appeals and the audit head."""
        if self._case is None:
            return {"request_id": workflow.info().workflow_id, "state": "submitting"}
        return status_view(self._case)

    @workflow.query
    def timeline(self) -> list[dict[str, Any]]:
        """Every audit entry of this request, in order (as written to the log)."""
        return list(self._case.timeline) if self._case is not None else []

    # --- side effects --------------------------------------------------------------------

    async def _deliver(self) -> None:
        platform = self.request.platform
        sent_at = workflow.now()
        if not platform.api:
            await self._fire(
                "delivered",
                f"{platform.name} has no API: the order is delivered by hand",
                at=None,
                change={"sent_at": sent_at, "received_at": sent_at},
                data={
                    "channel": "manual",
                    "sent_at": utc_iso(sent_at),
                    "received_at": utc_iso(sent_at),
                    "sla_policy": self.request.policy.id,
                },
            )
            return
        try:
            with self._waiting():
                ticket: DeliveryReceipt = await workflow.execute_activity_method(
                    PlatformActivities.deliver_order,
                    args=[platform.id, self.request.wire_order()],
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=DELIVERY_RETRY,
                    summary=f"deliver order to {platform.id}",
                )
        except ActivityError as exc:
            error = _cause(exc)
            await self._fire(
                "delivery_failed",
                f"delivery to {platform.id} failed: {error}",
                at=None,  # a failure carries no time of ours: a regular activity writes it
                change={"delivery_error": error},
                data={"error": error},
            )
            return
        received = ticket.received_at
        data: dict[str, Any] = {}
        if not self._legacy and ticket.sent_at is not None:
            # When the order really left (the attempt the platform answered, maybe after a
            # worker crash and retries), not when it was first asked for: the report's "sent"
            # times count from it. The SLA clock counts from the platform's receipt.
            sent_at = max(sent_at, ticket.sent_at)
            data = {"http_status": ticket.http_status, "authenticated": ticket.authenticated}
        await self._fire(
            "delivered",
            f"{platform.name} issued ticket {ticket.ticket}",
            at=sent_at,
            change={
                "ticket": ticket.ticket,
                "sent_at": sent_at,
                "received_at": received,
                "delivery_error": None,
            },
            data={
                "ticket": ticket.ticket,
                "sent_at": utc_iso(sent_at),
                "received_at": utc_iso(received),
                "sla_policy": self.request.policy.id,
                **data,
            },
        )

    async def _sla(self, timer: str, at: datetime) -> None:
        due = self.case.facts.due_at
        await self._fire(
            "sla_expired",
            f"no {'effect' if timer == 'effect' else 'response'} by "
            f"{utc_iso(due) if due else '-'} ({self.request.policy.id})",
            at=at,
            data={"timer": timer, "expired_at": utc_iso(due) if due else None},
        )

    async def _poll(self) -> None:
        platform = self.request.platform
        ticket = self.case.facts.ticket
        if ticket is None:
            return
        asked_at = workflow.now()
        try:
            with self._waiting():
                status: PollResult = await workflow.execute_activity_method(
                    PlatformActivities.poll_platform,
                    args=[platform.id, ticket],
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=POLL_RETRY,
                    summary=f"poll {platform.id} ticket {ticket}",
                )
        except ActivityError as exc:
            workflow.logger.warning("polling %s failed: %s", platform.id, _cause(exc))
            await self._platform_problem(_failure("poll", exc), at=asked_at)
            return
        if status.malformed_items:
            problem = {
                "kind": "malformed_items",
                "call": "poll",
                "message": f"{len(status.malformed_items)} item(s) of the answer broke the "
                "contract and were left out; the valid ones were recorded",
                "items": [m.model_dump(mode="json") for m in status.malformed_items],
            }
            await self._platform_problem(problem, at=asked_at)
        else:
            self._last_problem = None  # a clean answer: the next problem is news again
        commands = self.case.commands_from(status, self.platform_actor)
        self._quiet_polls = 0 if commands else self._quiet_polls + 1
        provenance = None if self._legacy else _provenance(platform.id, status)
        if len(commands) > 1 and (self._fewer_events or workflow.patched(ONE_WRITE_PER_POLL_PATCH)):
            await self._apply_in_one_write(commands, at=asked_at, provenance=provenance)
            return
        for command in commands:
            try:
                await self._apply(command, at=asked_at, provenance=provenance)
            except ApplicationError as exc:  # the state moved meanwhile: poll again later
                workflow.logger.info("platform report not applied: %s", exc)

    async def _platform_problem(self, problem: dict[str, Any], *, at: datetime) -> None:
        """Record what the platform refused or sent malformed (`platform_problem`), once per
        distinct problem: a platform that keeps answering 404 is not written at every poll.
        Requests started before this was recorded keep only the worker's log of it."""
        if self._legacy or self.case.closed:
            return
        key = repr(sorted((k, repr(v)) for k, v in problem.items()))
        if key == self._last_problem:
            return
        self._last_problem = key
        await self._fire(
            "platform_problem",
            f"{self.request.platform.name}: {problem['message']}",
            at=at,
            data={"problem": problem},
        )

    async def _probe(
        self,
        items: Sequence[tuple[str, str]],
        vantages: Sequence[str],
        *,
        baseline: bool = False,
        asked_at: datetime | None = None,
    ) -> list[Evidence]:
        """Probe every item from every vantage. A probe whose activity fails for good is kept
        as `probe_error` evidence (inconclusive) rather than failing the request."""
        # of the task that schedules the probes, unless the caller knows it from history
        asked_at = asked_at or workflow.now()
        calls = [
            self._probe_one(item_id, url, vantage, baseline=baseline, asked_at=asked_at)
            for item_id, url in items
            for vantage in vantages
        ]
        with self._waiting():
            return list(await asyncio.gather(*calls))

    async def _probe_one(
        self, item_id: str, url: str, vantage: str, *, baseline: bool, asked_at: datetime
    ) -> Evidence:
        method = PlatformActivities.capture_baseline if baseline else PlatformActivities.probe_item
        platform = self.request.platform
        try:
            return await workflow.execute_activity_method(
                method,
                args=[platform.id, item_id, url, vantage],
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=PROBE_RETRY,
                summary=f"{'baseline' if baseline else 'probe'} {item_id} from {vantage}",
            )
        except ActivityError as exc:
            error = _cause(exc)
            workflow.logger.warning("probe of %s from %s failed: %s", item_id, vantage, error)
            return Evidence(
                item_id=item_id,
                vantage=vantage,
                url=url,
                observation=Observation.PROBE_ERROR,
                inconclusive=True,
                status_code=None,
                final_url=url,
                body_sha256=None,
                marker="activity_failed",
                error=error[:500],
                # The failure has no time of ours; when the probe was asked is in history.
                probed_at=asked_at if self._local_audit else workflow.now(),
                markers_version=platform.markers.version,
            )

    async def _verify(
        self, trigger: str, items: list[tuple[str, str]], *, asked_at: datetime | None = None
    ) -> None:
        asked_at = asked_at or workflow.now()
        evidence = await self._probe(items, self.request.vantages, asked_at=asked_at)
        await self._fire(
            trigger,
            "independent verification of the platform's claims",
            at=asked_at,
            evidence=evidence,
        )

    async def _recheck(self, at: datetime) -> None:
        del at  # stamped when its probes are asked, right after this deadline
        await self._verify("recheck", self.case.removed_items())

    async def _complete_monitoring(self, at: datetime) -> None:
        await self._fire("monitoring_complete", "re-checks done and the appeal window ended", at=at)

    async def _close_appeal_window(self, at: datetime) -> None:
        await self._fire("appeal_window_closed", "no appeal was decided within the window", at=at)

    async def _check_reinstatement(self) -> None:
        items = self.case.reinstated_items()
        asked_at = workflow.now()
        evidence = await self._probe(items, self.request.vantages)
        if all(e.observation is Observation.AVAILABLE for e in evidence):
            await self._fire(
                "reinstated",
                "the reinstated content is reachable again",
                at=asked_at,
                evidence=evidence,
            )
            return
        version = self._version
        # Not back yet: look again later, backing off like polling (an operator can `close`
        # the request as disputed if the platform never reinstates).
        self._quiet_polls += 1
        with contextlib.suppress(TimeoutError), self._waiting():
            await workflow.wait_condition(
                lambda: self._version != version or bool(self._outbox),
                timeout=self._poll_interval(),
                timeout_summary="wait for reinstatement",
            )

    async def _send_notices(self) -> None:
        notice = self._outbox[0]
        ticket = self.case.facts.ticket
        sent = False
        if ticket is not None and self.request.platform.api:
            asked_at = workflow.now()
            try:
                with self._waiting():
                    await workflow.execute_activity_method(
                        PlatformActivities.send_notice,
                        args=[self.request.platform.id, ticket, notice],
                        start_to_close_timeout=timedelta(seconds=30),
                        retry_policy=NOTICE_RETRY,
                        summary=f"notice {notice.kind} to {self.request.platform.id}",
                    )
                sent = True
            except ActivityError as exc:
                # Only a non-retryable refusal gets here (NOTICE_RETRY retries the rest). The
                # transition that asked for the notice is recorded; failing the run over its
                # side effect would lose the request. The refusal is recorded beside it.
                workflow.logger.warning(
                    "notice %s to %s refused: %s",
                    notice.kind,
                    self.request.platform.id,
                    _cause(exc),
                )
                problem = _failure(f"{notice.kind} notice", exc) | {"notice": notice.kind}
                await self._platform_problem(problem, at=asked_at)
            if sent and notice.kind == "withdrawal" and self.case.current is State.WITHDRAWING:
                await self._fire(
                    "withdrawal_sent",
                    f"{self.request.platform.name} accepted the withdrawal notice",
                    at=asked_at,
                )
        self._outbox.pop(0)

    # --- visibility ----------------------------------------------------------------------

    def _publish(self) -> None:
        case = self.case
        facts = case.facts
        state = case.current
        order = self.request.order
        values: dict[str, Any] = {
            names.REQUEST_STATE.name: state.value,
            names.PLATFORM.name: order.platform,
            names.AUTHORITY.name: order.authority,
            names.LEGAL_BASIS.name: order.legal_bases[0].basis,
            names.CATEGORIES.name: list(order.categories),
            names.SLA_BREACHED.name: facts.sla_breached,
            names.DUE_AT.name: facts.due_at,
            names.OUTCOME.name: case.outcome.value if case.outcome else None,
        }
        # the keys that changed: every key the first time (before FEWER_EVENTS_PATCH; since,
        # the ones that differ from what the start set), and before that patch the state
        # always, so that every transition upserts; since, no upsert when nothing changed
        changed = [
            key
            for key in names.SEARCH_ATTRIBUTES
            if (key is names.REQUEST_STATE and not self._fewer_events)
            or self._published.get(key.name, _UNSET) != values[key.name]
        ]
        if changed:
            workflow.upsert_search_attributes(
                [
                    key.value_set(values[key.name])
                    if values[key.name] is not None
                    else key.value_unset()
                    for key in changed
                ]
            )
        self._published = values
        deadline = None if case.closed else self._deadline(state)
        workflow.set_current_details(
            details_markdown(
                case,
                now=workflow.now(),
                next_deadline=(deadline.at, deadline.label) if deadline else None,
            )
        )
        if case.closed:
            anchor = case.chain.anchor().to_dict()
            workflow.upsert_memo({"audit_anchor": anchor, "outcome": case.outcome})

    def _result(self) -> RequestResult:
        case = self.case
        return RequestResult(
            request_id=case.request_id,
            state=case.current.value,
            outcome=case.outcome.value if case.outcome else None,
            item_outcomes=case.item_outcomes(),
            audit_count=case.chain.sequence,
            audit_head=case.chain.head_hash,
            item_verification={} if self._legacy else case.facts.verification_words(),
        )


def _search_attributes_at_start() -> dict[str, Any]:
    """Docket's search attributes as the run's start set them (None: not set)."""
    typed = workflow.info().typed_search_attributes
    return {key.name: typed.get(key) for key in names.SEARCH_ATTRIBUTES}


def _memo_fingerprint() -> Any:
    """The `fingerprint` memo the run's start set (None if absent or not plain JSON: any
    client may set any memo, and a memo is never a reason to fail a workflow task)."""
    try:
        return workflow.memo_value("fingerprint", None)
    except Exception:
        return None


def _parse(trigger: str, payload: Sequence[Any]) -> Command:
    """The Update's arguments as the command model (one JSON object), or InvalidCommand
    naming each field path and problem."""
    if len(payload) != 1:
        raise ApplicationError(
            f"invalid {trigger} command: expected one argument (a JSON object), got "
            f"{_shape(payload)}",
            type="InvalidCommand",
            non_retryable=True,
        )
    try:
        return parse_command(trigger, payload[0])
    except ValidationError as exc:
        problems = "; ".join(
            f"{format_loc(tuple(e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ApplicationError(
            f"invalid {trigger} command: {problems}", type="InvalidCommand", non_retryable=True
        ) from None
    except ValueError as exc:
        raise ApplicationError(str(exc), type="InvalidCommand", non_retryable=True) from None


def _shape(values: Sequence[Any]) -> str:
    """What a caller passed, in a few words (never the values: they may be huge or hostile)."""
    if not values:
        return "no argument"
    kinds = ", ".join(type(v).__name__ if v is not None else "null" for v in values[:5])
    return f"{len(values)} argument(s): {kinds}"


def _failure(call: str, exc: ActivityError) -> dict[str, Any]:
    """A failed platform call as recorded: the activity's typed failure (HTTP status, the
    platform's own message), or the cause's text when it carries none."""
    cause = exc.cause
    problem: dict[str, Any] = {"kind": "refused", "call": call, "message": _cause(exc)[:500]}
    if isinstance(cause, ApplicationError):
        problem["kind"] = cause.type or "refused"
        details = cause.details[0] if cause.details else None
        if isinstance(details, dict):
            for key in ("http_status", "platform_error", "method", "path", "authenticated"):
                if details.get(key) is not None:
                    problem[key] = details[key]
    return problem


def _provenance(platform_id: str, status: PollResult) -> dict[str, Any]:
    """How a platform's answer reached Docket: through its API, and how it was authenticated."""
    return {
        "channel": "platform_api",
        "platform": platform_id,
        "ticket": status.ticket,
        "authenticated": status.authenticated,
    }


def _unsigned(payload: Sequence[Any]) -> bool:
    """An Update argument in the form used before signed commands (an `actor` claimed in the
    payload): only their histories hold such Updates, since the validator refuses them now."""
    return len(payload) == 1 and isinstance(payload[0], dict) and "statement" not in payload[0]


def _signed_or_refused(trigger: str, payload: Sequence[Any], case: Case) -> SignedCommand:
    if len(payload) != 1:
        raise _refused(
            CommandRefusal(
                "invalid_command",
                f"invalid {trigger} command: expected one argument (a signed command "
                f"{{statement, signature}}), got {_shape(payload)}",
            ),
            case,
        )
    try:
        return parse_signed(payload[0], f"{trigger} command")
    except CommandRefusal as exc:
        raise _refused(exc, case) from None


def _refused(exc: CommandRefusal, case: Case) -> ApplicationError:
    """A refused signed command as the Update's failure: what failed, the state, what is
    allowed. Malformed commands are bad input; the rest are refusals of who acts."""
    state = case.current
    allowed = list(allowed_triggers(state))
    return ApplicationError(
        f"{exc} (state is {state.value!r}; allowed now: {', '.join(allowed) or 'nothing'})",
        {"state": state.value, "allowed": allowed, "code": exc.code},
        type="InvalidCommand" if exc.code in ("invalid_command", "unsigned") else "Unauthenticated",
        non_retryable=True,
    )


def _rejection(exc: CommandRejected) -> ApplicationError:
    details: dict[str, Any] = {
        "state": exc.state.value,
        "allowed": list(allowed_triggers(exc.state)),
    }
    if exc.code is not None:
        details["code"] = exc.code
    return ApplicationError(str(exc), details, type="CommandRejected", non_retryable=True)


def _cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc)
