"""Reconcile the audit log with Temporal: every transition the workflows recorded is in the log,
the log holds nothing the workflows did not write, and each closed request's anchor is the log's
chain head.

    python -m audit reconcile [PATHS] [--query Q] [--workflow-id ID ...] [--json]

This module is the library: :func:`reconcile` receives a connected ``temporalio`` Client (the
CLI, ``audit.cli``, is the only part that connects).

Temporal's event history is the second, independent record of what a request did: every audit
entry travels through it, as the input of a ``write_audit_entries`` activity or as the result
of the same activity run locally (a local activity's marker records what it wrote), and the
write completes only after the entry is durable (``fsync``). So, per AuthorityRequest workflow:

===================  =========================================================================
finding              meaning
===================  =========================================================================
missing_entry        an entry of a *completed* audit write (same event.id and hash) is not in
                     the log, or only a copy whose body/hash was changed
unrecorded_entry     the log holds an entry of this chain that no audit write in the history
                     carried (forged, rewritten, or a copy of another run)
anchor_mismatch      a closed workflow's result (audit_count/audit_head) or memo audit_anchor
                     differs from the log's chain head (or from its own history)
missing_chain        the history wrote entries but the log has none for that chain
unknown_chain        (full reconcile only) the log holds a chain Temporal does not know
history_unavailable  the history could not be fetched (not found, permission, RPC error)
===================  =========================================================================

Notes (informational, not findings): ``in_flight_entry`` (a running workflow's last write has
been made durable but its activity has not completed yet: retries write the identical entry;
for a local write, the entries right after the history's last one, chained to it, whose
workflow task has not completed yet),
``unacknowledged_entry`` (a closed workflow's audit activity never completed, e.g. terminated
mid-write, yet an attempt wrote the entry: the transition was never applied), ``no_anchor`` (a
completed workflow without a result/memo anchor).

An activity attempt may write its entries and then fail or time out before completing; the
retry writes identical entries. Those copies carry the completed activity's hash, so they are
covered (``verify`` drops them as identical duplicates). Running workflows are checked as
prefixes: the history is fetched first, the log read afterwards (anything the history shows as
completed must be in the log), and a running chain whose log runs ahead of the fetched history is
re-fetched once before anything is reported.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from audit.chain import chain_id_of, genesis_hash, is_hex64
from audit.entry import AuditAnchor
from audit.findings import Finding
from audit.lines import inspect_line
from audit.reader import find_segments, iter_lines

if TYPE_CHECKING:  # temporalio is imported lazily: verify/show/report must start fast
    from temporalio.client import Client
    from temporalio.converter import DataConverter
    from temporalio.service import RPCError

__all__ = [
    "AUDIT_ACTIVITY",
    "DEFAULT_QUERY",
    "FINDING_CODES",
    "LOCAL_ACTIVITY_MARKER",
    "NOTE_CODES",
    "HistoryWrite",
    "LogCopy",
    "ReconcileResult",
    "WorkflowFacts",
    "check_anchors",
    "compare_workflow",
    "fetch_facts",
    "load_log",
    "local_audit_writes",
    "reconcile",
    "rpc_message",
]

AUDIT_ACTIVITY = "write_audit_entries"
DEFAULT_QUERY = "WorkflowType = 'AuthorityRequest'"
FINDING_CODES = (
    "missing_entry",
    "unrecorded_entry",
    "anchor_mismatch",
    "missing_chain",
    "unknown_chain",
    "history_unavailable",
)
NOTE_CODES = ("in_flight_entry", "unacknowledged_entry", "no_anchor")

_CLOSED = {  # the history's closing event -> the run's status
    "WORKFLOW_EXECUTION_COMPLETED": "completed",
    "WORKFLOW_EXECUTION_FAILED": "failed",
    "WORKFLOW_EXECUTION_TIMED_OUT": "timed_out",
    "WORKFLOW_EXECUTION_CANCELED": "canceled",
    "WORKFLOW_EXECUTION_TERMINATED": "terminated",
    "WORKFLOW_EXECUTION_CONTINUED_AS_NEW": "continued_as_new",
}
_ACTIVITY_CLOSE = {  # an activity's closing event -> (status, its attributes field)
    "ACTIVITY_TASK_COMPLETED": ("completed", "activity_task_completed_event_attributes"),
    "ACTIVITY_TASK_FAILED": ("failed", "activity_task_failed_event_attributes"),
    "ACTIVITY_TASK_TIMED_OUT": ("timed_out", "activity_task_timed_out_event_attributes"),
    "ACTIVITY_TASK_CANCELED": ("canceled", "activity_task_canceled_event_attributes"),
}


# --------------------------------------------------------------------------------------------
# Results


@dataclass(slots=True)
class ReconcileResult:
    workflows: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    history_entries: int = 0  # entries carried by completed audit writes
    retried_writes: int = 0  # completed audit writes that needed more than one attempt
    matched_entries: int = 0  # history entries found intact in the log
    files: int = 0
    log_entries: int = 0  # log lines (copies) of the chains in scope
    anchors_checked: int = 0
    refetched: int = 0
    findings: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> dict[str, Any]:
        codes = Counter(f.code for f in self.findings)
        notes = Counter(n.code for n in self.notes)
        return {
            "status": "OK" if self.ok else "FAILED",
            "workflows": self.workflows,
            "workflows_by_status": dict(sorted(self.by_status.items())),
            "history_entries": self.history_entries,
            "matched_entries": self.matched_entries,
            "retried_writes": self.retried_writes,
            "files": self.files,
            "log_entries": self.log_entries,
            "anchors_checked": self.anchors_checked,
            "histories_refetched": self.refetched,
            "findings": len(self.findings),
            "findings_by_code": {c: codes[c] for c in FINDING_CODES if codes[c]},
            "notes": len(self.notes),
            "notes_by_code": {c: notes[c] for c in NOTE_CODES if notes[c]},
        }

    def to_dict(self) -> dict[str, Any]:
        def row(f: Finding) -> dict[str, Any]:
            return {**f.to_dict(), "workflow_id": f.chain_id}  # the chain id is the workflow id

        return {
            "summary": self.summary(),
            "findings": [row(f) for f in self.findings],
            "notes": [row(n) for n in self.notes],
        }

    def render_text(self) -> str:
        out = [f.render() for f in self.findings]
        out += [n.render("note ") for n in self.notes]
        s = self.summary()
        statuses = ", ".join(f"{v} {k}" for k, v in s["workflows_by_status"].items())
        line = (
            f"{s['status']}: {s['workflows']} workflows ({statuses or 'none'}), "
            f"{s['history_entries']} entries in history, {s['matched_entries']} matched in the "
            f"log ({s['files']} files, {s['log_entries']} lines in scope), "
            f"{s['retried_writes']} retried writes, {s['anchors_checked']} anchors checked, "
            f"{s['findings']} findings"
        )
        if s["findings"]:
            line += " (" + ", ".join(f"{k}={v}" for k, v in s["findings_by_code"].items()) + ")"
        line += f", {s['notes']} notes"
        if s["notes"]:
            line += " (" + ", ".join(f"{k}={v}" for k, v in s["notes_by_code"].items()) + ")"
        out.append(line)
        return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# What the history says


@dataclass(slots=True)
class HistoryWrite:
    """One entry carried by one ``write_audit_entries`` activity."""

    sequence: int
    event_id: str
    hash: str
    status: str  # completed | pending | failed | timed_out | canceled
    scheduled_event_id: int
    attempt: int = 1


@dataclass(slots=True)
class WorkflowFacts:
    workflow_id: str
    run_id: str
    status: str  # running | completed | failed | timed_out | canceled | terminated | ...
    writes: list[HistoryWrite] = field(default_factory=list)
    result_anchor: AuditAnchor | None = None
    memo_anchor: AuditAnchor | None = None
    problems: list[str] = field(default_factory=list)  # undecodable payloads etc.

    @property
    def running(self) -> bool:
        return self.status == "running"


async def _decode(converter: DataConverter, payloads: Sequence[Any]) -> list[Any]:
    return await converter.decode(list(payloads))


def _anchor(chain_id: str, count: Any, head: Any) -> AuditAnchor | None:
    if type(count) is int and count >= 0 and is_hex64(head):
        return AuditAnchor(chain_id, count, str(head))
    return None


async def fetch_facts(client: Client, workflow_id: str, run_id: str | None = None) -> WorkflowFacts:
    """Stream one run's history and keep only what reconcile needs (raises RPCError)."""
    from temporalio.api.enums.v1 import EventType

    name = {v: k.removeprefix("EVENT_TYPE_") for k, v in EventType.items()}
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    converter = client.data_converter
    facts = WorkflowFacts(workflow_id, run_id or "", "running")
    scheduled: dict[int, list[HistoryWrite]] = {}
    started_attempt: dict[int, int] = {}
    async for ev in handle.fetch_history_events():
        et = name.get(ev.event_type, "")
        if et == "ACTIVITY_TASK_SCHEDULED":
            a = ev.activity_task_scheduled_event_attributes
            if a.activity_type.name != AUDIT_ACTIVITY:
                continue
            writes: list[HistoryWrite] = []
            try:
                (entries,) = await _decode(converter, a.input.payloads)
                for e in entries:
                    event = e["event"]
                    writes.append(
                        HistoryWrite(
                            int(event["sequence"]),
                            str(event["id"]),
                            str(e["hash"]),
                            "pending",
                            ev.event_id,
                        )
                    )
            except (ValueError, TypeError, KeyError) as exc:
                facts.problems.append(f"event {ev.event_id}: cannot decode audit input: {exc}")
            scheduled[ev.event_id] = writes
            facts.writes.extend(writes)
        elif et == "MARKER_RECORDED":
            try:
                local = await local_audit_writes(converter, ev)
            except (ValueError, TypeError, KeyError) as exc:
                facts.problems.append(
                    f"event {ev.event_id}: cannot decode local audit write: {exc}"
                )
                continue
            facts.writes.extend(local)
        elif et == "ACTIVITY_TASK_STARTED":
            s = ev.activity_task_started_event_attributes
            if s.scheduled_event_id in scheduled:
                started_attempt[s.scheduled_event_id] = s.attempt
        elif et in _ACTIVITY_CLOSE:
            status, attrs = _ACTIVITY_CLOSE[et]
            sid = getattr(ev, attrs).scheduled_event_id
            for w in scheduled.get(sid, ()):
                w.status = status
                w.attempt = started_attempt.get(sid, 1)
        elif et == "WORKFLOW_PROPERTIES_MODIFIED":
            memo = ev.workflow_properties_modified_event_attributes.upserted_memo.fields
            if "audit_anchor" in memo:
                try:
                    (value,) = await _decode(converter, [memo["audit_anchor"]])
                    facts.memo_anchor = _anchor(
                        workflow_id, value.get("count"), value.get("head_hash")
                    )
                except (ValueError, TypeError, AttributeError) as exc:
                    facts.problems.append(f"event {ev.event_id}: bad audit_anchor memo: {exc}")
        elif et == "WORKFLOW_EXECUTION_STARTED":
            if not facts.run_id:
                started = ev.workflow_execution_started_event_attributes
                facts.run_id = started.original_execution_run_id
        elif et in _CLOSED:
            facts.status = _CLOSED[et]
            if et == "WORKFLOW_EXECUTION_COMPLETED":
                payloads = ev.workflow_execution_completed_event_attributes.result.payloads
                if payloads:
                    try:
                        (value,) = await _decode(converter, payloads)
                        if isinstance(value, dict):
                            facts.result_anchor = _anchor(
                                workflow_id, value.get("audit_count"), value.get("audit_head")
                            )
                    except (ValueError, TypeError) as exc:
                        facts.problems.append(f"cannot decode the workflow result: {exc}")
    return facts


LOCAL_ACTIVITY_MARKER = "core_local_activity"  # the SDK core's marker for a local activity


async def local_audit_writes(converter: DataConverter, ev: Any) -> list[HistoryWrite]:
    """The entries a completed local ``write_audit_entries`` recorded (its result lists
    ``id``, ``sequence`` and ``hash`` of each); nothing for any other marker."""
    m = ev.marker_recorded_event_attributes
    if m.marker_name != LOCAL_ACTIVITY_MARKER or "data" not in m.details:
        return []
    (data,) = await _decode(converter, m.details["data"].payloads)
    if data.get("activity_type") != AUDIT_ACTIVITY or m.HasField("failure"):
        return []  # a failed local write recorded nothing; its retry did or will
    result = m.details["result"].payloads if "result" in m.details else []
    (written,) = await _decode(converter, result) if result else ([],)
    attempt = int(data.get("attempt") or 1)
    return [
        HistoryWrite(
            int(w["sequence"]), str(w["id"]), str(w["hash"]), "completed", ev.event_id, attempt
        )
        for w in written or ()
    ]


# --------------------------------------------------------------------------------------------
# What the log says


@dataclass(slots=True)
class LogCopy:
    """One distinct copy of an entry in the log (identical re-writes are folded)."""

    sequence: int
    event_id: str
    hash: str  # as stored
    intact: bool  # the stored hash recomputes from the copy's own prev_hash and body
    file: str
    line: int
    prev_hash: str = ""


LogIndex = dict[str, dict[int, list[LogCopy]]]


def load_log(paths: Iterable[str], chains: set[str] | None = None) -> tuple[LogIndex, int, int]:
    """Index the log by chain and sequence: (index, files, copies read).

    ``chains``: only these chains (None: all). Unparseable, torn and ill-formed lines are
    skipped here: ``verify`` reports them.
    """
    paths = list(paths)
    files = len(find_segments(paths))
    index: LogIndex = {}
    seen: set[tuple[str, int, str, str, bool]] = set()
    copies = 0
    contains = None
    if chains is not None and len(chains) == 1:
        contains = next(iter(chains)).encode()
    for path, line, raw in iter_lines(paths, contains=contains):
        check = inspect_line(raw)
        e = check.entry
        if e is None:
            continue
        ev = e.get("event")
        if type(ev) is not dict:
            continue
        eid, seq = ev.get("id"), ev.get("sequence")
        cid = chain_id_of(e)
        h, p = e.get("hash"), e.get("prev_hash")
        if type(cid) is not str or type(seq) is not int or type(eid) is not str:
            continue
        if chains is not None and cid not in chains:
            continue
        if not isinstance(h, str) or not isinstance(p, str) or not is_hex64(h) or not is_hex64(p):
            continue
        copies += 1
        # The content's hash recomputes (byte-exactness of the line is verify's finding).
        intact = check.code != "invalid_entry" and check.recomputed == h
        key = (cid, seq, eid, h, intact)
        if key in seen:
            continue  # an identical re-write (retried activity): one copy is enough
        seen.add(key)
        index.setdefault(cid, {}).setdefault(seq, []).append(
            LogCopy(seq, eid, h, intact, path, line, p)
        )
    return index, files, copies


# --------------------------------------------------------------------------------------------
# Comparing one workflow with its chain


def compare_workflow(
    facts: WorkflowFacts,
    chain: dict[int, list[LogCopy]] | None,
    *,
    explain: WorkflowFacts | None = None,
) -> tuple[list[Finding], list[Finding], int]:
    """Findings, notes and the number of history entries found intact in the log.

    ``facts`` is the history fetched *before* the log was read (what it shows completed must be
    in the log). ``explain``, if given, is a later fetch of the same run, used only to explain
    log entries that are newer than ``facts`` (a running workflow moving on meanwhile).
    """
    wid, run = facts.workflow_id, facts.run_id
    findings: list[Finding] = []
    notes: list[Finding] = []
    chain = chain or {}

    def finding(code: str, msg: str, seq: int | None = None, **kw: Any) -> None:
        findings.append(Finding(code, msg, wid, seq, run_id=run, **kw))

    def note(code: str, msg: str, seq: int | None = None, **kw: Any) -> None:
        notes.append(Finding(code, msg, wid, seq, run_id=run, **kw))

    for problem in facts.problems:
        finding("history_unavailable", f"the history could not be read completely: {problem}")

    completed: dict[int, HistoryWrite] = {}
    for w in facts.writes:
        if w.status == "completed":
            completed.setdefault(w.sequence, w)
    source = explain or facts
    other: dict[tuple[int, str], HistoryWrite] = {
        (w.sequence, w.hash): w for w in source.writes if w.status != "completed"
    }
    known: dict[tuple[int, str], HistoryWrite] = {
        (w.sequence, w.hash): w for w in source.writes if w.status == "completed"
    }
    known.update({(s, w.hash): w for s, w in completed.items()})

    if completed and not chain:
        last = completed[max(completed)]
        finding(
            "missing_chain",
            "the history wrote entries for this request but the log has none: its segments "
            "are missing or were deleted",
            found="no entries",
            expected=f"{len(completed)} entries, head {last.hash}",
        )
        return findings, notes, 0

    # A local write makes its entries durable before its workflow task completes, so the log
    # of a workflow that has not completed may run ahead of the history by the entries of one
    # task: consecutive, intact, each chained to the one before, starting from the history's
    # last completed entry. (A completed workflow's last task completed: nothing is ahead.)
    ahead: set[tuple[int, str]] = set()
    head_seq = max(completed, default=0)
    prev = completed[head_seq].hash if completed else genesis_hash(wid)
    seq = head_seq + 1
    if source.status != "completed":
        while len(chain.get(seq, [])) == 1 and chain[seq][0].intact:
            c = chain[seq][0]
            if c.prev_hash != prev or (seq, c.hash) in known or (seq, c.hash) in other:
                break
            ahead.add((seq, c.hash))
            prev, seq = c.hash, seq + 1

    matched = 0
    for seq in sorted(completed):
        w = completed[seq]
        copies = chain.get(seq, [])
        if any(c.hash == w.hash and c.intact and c.event_id == w.event_id for c in copies):
            matched += 1
            continue
        if not copies:
            found: Any = "absent"
            why = "the entry is not in the log (deleted, or its segment is missing)"
        else:
            found = "; ".join(
                f"hash {c.hash}{'' if c.intact else ' (does not recompute)'}" for c in copies
            )
            why = (
                "the log's copy has the recorded hash but its body or prev_hash was changed"
                if any(c.hash == w.hash for c in copies)
                else "the log holds a different entry for this sequence"
            )
        f0 = copies[0] if copies else None
        finding(
            "missing_entry",
            f"{why}; the workflow wrote it (audit activity completed, history event "
            f"{w.scheduled_event_id})",
            seq,
            found=found,
            expected=f"{w.event_id} hash {w.hash}",
            file=f0.file if f0 else None,
            line=f0.line if f0 else None,
        )

    for seq in sorted(chain):
        for c in chain[seq]:
            if c.intact and (seq, c.hash) in known and c.event_id == known[(seq, c.hash)].event_id:
                continue
            if (seq, c.hash) in ahead:
                note(
                    "in_flight_entry" if source.running else "unacknowledged_entry",
                    "written by a local audit write whose workflow task has not completed "
                    + (
                        "yet: the task's next attempt writes the identical entry"
                        if source.running
                        else f"(workflow {source.status}): the transition was never applied"
                    ),
                    seq,
                    found=f"hash {c.hash}",
                    file=c.file,
                    line=c.line,
                )
                continue
            pending = other.get((seq, c.hash))
            if pending is not None and c.intact:
                if source.running and pending.status == "pending":
                    note(
                        "in_flight_entry",
                        "written by an audit activity that has not completed yet (the "
                        "workflow's in-flight write): its retries write the identical entry",
                        seq,
                        found=f"hash {c.hash}",
                        file=c.file,
                        line=c.line,
                    )
                else:
                    note(
                        "unacknowledged_entry",
                        f"written by an attempt of an audit activity that ended {pending.status} "
                        f"(workflow {source.status}): the transition it describes was never "
                        "applied",
                        seq,
                        found=f"hash {c.hash}",
                        file=c.file,
                        line=c.line,
                    )
                continue
            expected = completed.get(seq)
            finding(
                "unrecorded_entry",
                "the log holds an entry of this chain that no audit write in the workflow's "
                "history carried: forged, rewritten or re-hashed"
                + ("" if c.intact else " (its own hash does not even recompute)"),
                seq,
                found=f"{c.event_id} hash {c.hash}",
                expected=f"hash {expected.hash}" if expected else "no entry",
                file=c.file,
                line=c.line,
            )
    return findings, notes, matched


def _log_head(chain: dict[int, list[LogCopy]]) -> tuple[int, list[str]]:
    if not chain:
        return 0, []
    seq = max(chain)
    return seq, sorted({c.hash for c in chain[seq]})


def check_anchors(
    facts: WorkflowFacts, chain: dict[int, list[LogCopy]] | None
) -> tuple[list[Finding], list[Finding], int]:
    """A completed run's result and memo anchors must equal the log's head and the history's."""
    findings: list[Finding] = []
    notes: list[Finding] = []
    if facts.running:
        return findings, notes, 0  # a prefix: compare_workflow covers it
    wid, run = facts.workflow_id, facts.run_id
    count, heads = _log_head(chain or {})
    completed = [w for w in facts.writes if w.status == "completed"]
    hist = max(completed, key=lambda w: w.sequence) if completed else None
    hist_anchor = (hist.sequence, hist.hash) if hist else (0, None)
    checked = 0
    anchors = [("result", facts.result_anchor), ("memo audit_anchor", facts.memo_anchor)]
    if facts.status == "completed":
        for what, anchor in anchors:
            if anchor is None:
                notes.append(
                    Finding(
                        "no_anchor",
                        f"the completed workflow has no {what} anchor to check",
                        wid,
                        run_id=run,
                    )
                )
    for what, anchor in anchors:
        if anchor is None:
            continue
        checked += 1
        log_desc = (
            f"log: {count} entries, head {' | '.join(heads) or 'none'}"
            if heads
            else "log: no entries"
        )
        if count != anchor.count or anchor.head_hash not in heads or len(heads) != 1:
            findings.append(
                Finding(
                    "anchor_mismatch",
                    f"the workflow's {what} anchor is not the log's chain head: entries were "
                    "deleted at the tail, appended, or the chain was rewritten and re-hashed",
                    wid,
                    anchor.count,
                    found=log_desc,
                    expected=f"{what}: {anchor.count} entries, head {anchor.head_hash}",
                    run_id=run,
                )
            )
        if (anchor.count, anchor.head_hash) != hist_anchor:
            findings.append(
                Finding(
                    "anchor_mismatch",
                    f"the workflow's {what} anchor disagrees with its own history's last "
                    "completed audit write (a workflow bug, not a log problem)",
                    wid,
                    anchor.count,
                    found=f"history: {hist_anchor[0]} entries, head {hist_anchor[1]}",
                    expected=f"{what}: {anchor.count} entries, head {anchor.head_hash}",
                    run_id=run,
                )
            )
    return findings, notes, checked


# --------------------------------------------------------------------------------------------
# The whole run


def rpc_message(exc: RPCError) -> str:
    """A one-line explanation of a Temporal RPC error."""
    from temporalio.service import RPCStatusCode

    if exc.status == RPCStatusCode.NOT_FOUND:
        return "no such workflow in this namespace (never started, or deleted by retention)"
    return f"{exc.status.name if exc.status else 'RPC error'}: {exc.message}"


async def _fetch(client: Client, workflow_id: str, run_id: str | None = None) -> WorkflowFacts:
    """fetch_facts; a busy or briefly unreachable cluster is retried by the client itself
    (the SDK's RetryConfig, set by docket.client.connect)."""
    return await fetch_facts(client, workflow_id, run_id)


async def reconcile(
    client: Client,
    paths: Sequence[str],
    *,
    query: str | None = None,
    workflow_ids: Sequence[str] = (),
    concurrency: int = 32,
) -> ReconcileResult:
    """Reconcile the log under ``paths`` with the workflows selected by ``query`` and/or
    ``workflow_ids`` (default: every AuthorityRequest workflow; then also chains in the log that
    Temporal does not know are findings)."""
    from temporalio.service import RPCError, RPCStatusCode

    full = query is None and not workflow_ids
    if full:
        query = DEFAULT_QUERY
    result = ReconcileResult()
    sem = asyncio.Semaphore(max(1, concurrency))
    facts: dict[str, WorkflowFacts] = {}

    async def fetch(wid: str, run_id: str | None) -> None:
        async with sem:
            try:
                facts[wid] = await _fetch(client, wid, run_id)
            except RPCError as exc:
                result.findings.append(
                    Finding(
                        "history_unavailable",
                        f"cannot fetch the history: {rpc_message(exc)}",
                        wid,
                        run_id=run_id,
                    )
                )

    # 1. Histories first: whatever they show as completed was durable before we read the log.
    targets: dict[str, str | None] = {wid: None for wid in workflow_ids}
    if query:
        async for execution in client.list_workflows(query):
            # Several runs of one id (only after a reset): the newest listed run wins.
            targets.setdefault(execution.id, execution.run_id)
    await asyncio.gather(*(fetch(wid, run) for wid, run in targets.items()))

    # 2. The log.
    index, result.files, result.log_entries = load_log(paths, None if full else set(targets))

    # Chains in the log that the listing did not return: visibility lags behind (a request just
    # started), so ask for each by id before calling it unknown.
    if full:
        extra = [cid for cid in index if cid not in facts and cid not in targets]

        async def probe(cid: str) -> None:
            async with sem:
                try:
                    facts[cid] = await _fetch(client, cid)
                except RPCError as exc:
                    if exc.status != RPCStatusCode.NOT_FOUND:
                        result.findings.append(
                            Finding(
                                "history_unavailable",
                                f"cannot fetch the history: {rpc_message(exc)}",
                                cid,
                            )
                        )
                        return
                    copies = index[cid]
                    first = copies[min(copies)][0]
                    result.findings.append(
                        Finding(
                            "unknown_chain",
                            "the log holds a chain for which Temporal has no workflow: forged, "
                            "from another namespace/cluster, or its history was deleted by the "
                            "namespace's retention (reconcile closed requests before retention "
                            "ends, and keep their anchors)",
                            cid,
                            found=f"{len(copies)} sequences in the log",
                            expected="a workflow with this id",
                            file=first.file,
                            line=first.line,
                        )
                    )

        await asyncio.gather(*(probe(cid) for cid in extra))

    # 3. Compare; a running chain whose log runs ahead of the history is re-fetched once.
    async def check(wid: str, f: WorkflowFacts) -> None:
        chain = index.get(wid)
        findings, notes, matched = compare_workflow(f, chain)
        if f.running and any(x.code == "unrecorded_entry" for x in findings):
            async with sem:
                try:
                    later = await _fetch(client, wid, f.run_id or None)
                except RPCError:
                    later = None
            if later is not None:
                result.refetched += 1
                findings, notes, matched = compare_workflow(f, chain, explain=later)
        a_findings, a_notes, checked = check_anchors(f, chain)
        result.findings.extend(findings + a_findings)
        result.notes.extend(notes + a_notes)
        result.matched_entries += matched
        result.anchors_checked += checked

    await asyncio.gather(*(check(wid, f) for wid, f in facts.items()))
    for f in facts.values():
        result.workflows += 1
        result.by_status[f.status] += 1
        done = [w for w in f.writes if w.status == "completed"]
        result.history_entries += len(done)
        result.retried_writes += len({w.scheduled_event_id for w in done if w.attempt > 1})

    def order(x: Finding) -> tuple[str, int, str]:
        return (x.chain_id or "", x.sequence if x.sequence is not None else -1, x.code)

    result.findings.sort(key=order)
    result.notes.sort(key=order)
    return result
