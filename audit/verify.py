"""Verify audit segments offline (CloudTrail validate-logs style).

Every input is read or reported. All segments are merged; entries are grouped by chain
(``docket.chain_id``, else the prefix of ``event.id``) and sequence. Identical copies of an
entry (same event.id, body, prev_hash and hash; writer metadata may differ) are the expected
result of activity retries: they are dropped and counted as ``duplicates_dropped``. Each line's
stored body must be byte for byte its canonical form (``audit.lines``), and its hash is checked
over those stored bytes. Everything else is a :class:`~audit.findings.Finding`:

==============  ==============================================================================
code            meaning
==============  ==============================================================================
unparseable     a line is not a JSON object (bit rot, manual edit, or a torn line mid-file)
invalid_entry   a JSON object that is not a well-formed entry (missing/ill-typed chain fields,
                event.id != "<chain_id>:<sequence>", a value outside the canonical subset,
                containers nested deeper than the writer allows)
non_canonical   the stored line is not the canonical form of its entry (duplicate keys, other
                escapes, reordered keys, whitespace, CRLF, a byte order mark, a misplaced
                writer object): no Docket writer wrote it
torn_tail       the last line of a segment has no newline: a writer died mid-write; that line
                was never acknowledged and is ignored (its retry is elsewhere)
hash_mismatch   the stored hash differs from the hash recomputed from prev_hash and the body:
                the body or the hash was altered
chain_break     prev_hash differs from the previous entry's hash: an entry was swapped,
                replaced or re-hashed
gap             sequence numbers are missing (an entry was deleted, or its segment is missing)
duplicate       the same event.id appears with an identical body but different prev_hash/hash:
                one copy's chain fields were altered (the copy that verifies is kept)
conflict        the same event.id appears with different bodies: a forged or rewritten entry
after_terminal  an entry follows a terminal transition (to ``closed``): a closed request never
                moves again
state_mismatch  an entry's from_state is not the previous entry's to_state (or the first entry
                does not start from none): entries were dropped, reordered or forged
missing_chain   a chain named by an anchor (or referenced by another chain) has no entries
anchor_mismatch the chain's entry count or head hash differs from the anchor the auditor holds:
                a deleted tail, appended entries, or a re-hashed (rewritten) chain
unreadable      a segment or directory could not be read (permission, I/O error, not a
                regular file): its entries were not checked
dangling_link   a symbolic link under the log points nowhere: what it pointed to was not read
empty_file      a segment holds no bytes at all
==============  ==============================================================================
"""

from __future__ import annotations

import hashlib
import os
import re
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from audit.canonical import CanonicalError, canonical, in_subset
from audit.chain import ENTRY_TAG, UNHASHED_KEYS, chain_id_of, chain_of_event_id, genesis_hash
from audit.chunks import CHUNK_BYTES, Chunk, gc_paused, map_chunks, plan_chunks, read_lines
from audit.entry import AuditAnchor
from audit.findings import Finding
from audit.lines import TAIL_MARK, inspect_line
from audit.progress import Progress
from audit.reader import Inputs, discover

__all__ = [
    "FINDING_CODES",
    "Finding",
    "VerifyResult",
    "load_anchors",
    "verify_bytes",
    "verify_inputs",
    "verify_paths",
]

FINDING_CODES = (
    "hash_mismatch",
    "chain_break",
    "gap",
    "duplicate",
    "conflict",
    "after_terminal",
    "state_mismatch",
    "torn_tail",
    "missing_chain",
    "anchor_mismatch",
    "unparseable",
    "invalid_entry",
    "non_canonical",
    "unreadable",
    "dangling_link",
    "empty_file",
)

_SORT_STRICT = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_loads = orjson.loads
_dumps = orjson.dumps
_sha256 = hashlib.sha256
_HEX = b"0123456789abcdef"
_HASH_SEP = b'","hash":"'
_WRITER = b',"writer":'
# A fraction followed by the end of a JSON value: how orjson writes a float (inside a string it
# is at most a false alarm, which costs one slow check). Only such bodies pay for the full
# subset check; ints beyond 2**53 and nesting beyond MAX_NESTING cost nothing (orjson refuses
# to re-serialise them). A float orjson writes without a fraction (1e16) and non-ASCII keys are
# only caught by ``strict``, which checks every body: they are unambiguous to JSON readers (the
# bytes are exactly what orjson writes back), only outside the subset Docket writes.
_SUSPECT_NUMBER = re.compile(rb"\.[0-9]+[,}\]]")


@dataclass(slots=True)
class VerifyResult:
    files: int = 0
    lines: int = 0
    entries: int = 0  # distinct entries after dropping identical duplicates
    chains: int = 0
    duplicates_dropped: int = 0
    anchors_checked: int = 0
    legacy_lines: int = 0  # lines in the pre-byte-exact form (U+2028/U+2029 escaped)
    findings: list[Finding] = field(default_factory=list)
    heads: dict[str, AuditAnchor] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # files under the paths, not *.jsonl

    @property
    def ok(self) -> bool:
        return not self.findings

    def by_code(self) -> dict[str, int]:
        """Counts by code: verify's own codes in their order, then the codes of the checks
        that add their findings to this result (signatures, checkpoint), by name."""
        counts = Counter(f.code for f in self.findings)
        known = {code: counts[code] for code in FINDING_CODES if counts[code]}
        return known | {code: counts[code] for code in sorted(counts) if code not in known}

    def summary(self) -> dict[str, Any]:
        return {
            "status": "OK" if self.ok else "FAILED",
            "files": self.files,
            "lines": self.lines,
            "entries": self.entries,
            "chains": self.chains,
            "duplicates_dropped": self.duplicates_dropped,
            "anchors_checked": self.anchors_checked,
            "legacy_lines": self.legacy_lines,
            "ignored_files": len(self.ignored),
            "findings": len(self.findings),
            "findings_by_code": self.by_code(),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "findings": [f.to_dict() for f in self.findings],
            "ignored_files": list(self.ignored),
        }


# --------------------------------------------------------------------------------------------
# Scanning (runs in worker processes when the log is large)

# (code, chain, seq, rel_line, found, expected, message)
_Problem = tuple[str, str | None, int | None, int, Any, Any, str]


@dataclass(slots=True)
class _ChunkResult:
    file_idx: int
    nlines: int
    chains: list[str]
    seqs: array  # type: ignore[type-arg]
    lines: array  # type: ignore[type-arg]  # 1-based line number within the chunk
    offsets: array  # type: ignore[type-arg]  # absolute byte offset of the line
    hashes: bytearray  # 64 bytes per record: prev_hash digest || stored hash digest
    states: list[tuple[str | None, str]]  # (from_state, to_state) per record, interned
    recomputed: dict[int, bytes]  # record index -> recomputed hash, only where it differs
    suspect: set[int]  # records whose content is not trustworthy (non-canonical line)
    refs: dict[str, tuple[str, int]]  # referenced chain id -> (referencing chain, seq)
    problems: list[_Problem]
    legacy: int


def _scan(chunk: Chunk, strict: bool = False) -> _ChunkResult:
    with gc_paused():
        return _scan_lines(read_lines(chunk), chunk.start, chunk.file_idx, strict)


def _slow_line(
    raw: bytes, lno: int, problems: list[_Problem]
) -> tuple[dict[str, Any], bytes, bytes, bytes, bool, bool] | None:
    """A line the fast path did not take: (body, prev digest, stored digest, recomputed digest,
    trusted, legacy form) if it can still be placed in its chain, else None; its findings are
    appended to ``problems``."""
    check = inspect_line(raw)
    e = check.entry
    if e is None or check.code in ("unparseable", "invalid_entry"):
        ev = e.get("event") if e is not None else None
        seq = ev.get("sequence") if type(ev) is dict else None
        problems.append(
            (
                check.code or "unparseable",
                chain_id_of(e) if e is not None else None,
                seq if type(seq) is int else None,
                lno,
                None,
                None,
                str(check.message),
            )
        )
        return None
    if check.code == "non_canonical":
        ev = e.get("event")
        seq = ev.get("sequence") if type(ev) is dict else None
        problems.append(
            (
                "non_canonical",
                chain_id_of(e),
                seq if type(seq) is int else None,
                lno,
                check.found,
                check.expected,
                str(check.message),
            )
        )
    body = {k: v for k, v in e.items() if k not in UNHASHED_KEYS}
    return (
        body,
        bytes.fromhex(e["prev_hash"]),
        bytes.fromhex(e["hash"]),
        bytes.fromhex(str(check.recomputed)),
        check.code is None,
        check.legacy,
    )


def _invalid(cid: Any, seq: Any, eid: Any, frm: Any, to: Any, lno: int) -> _Problem:
    """The invalid_entry finding for an entry whose chain fields are missing or ill-typed."""
    if type(cid) is not str or not cid:
        why = "no docket.chain_id / event.id"
    elif type(seq) is not int or seq < 1:
        why = f"event.sequence must be an int >= 1, got {seq!r}"
    elif eid != f"{cid}:{seq}":
        why = f"event.id {eid!r} is not '<chain_id>:<sequence>' ({cid}:{seq})"
    else:
        why = "docket.from_state / docket.to_state must be state names (from_state may be null)"
    c = cid if type(cid) is str else None
    s = seq if type(seq) is int else None
    return ("invalid_entry", c, s, lno, None, None, why)


def _scan_lines(lines: list[bytes], start: int, file_idx: int, strict: bool) -> _ChunkResult:
    """Check every line (``lines`` as ``bytes.split(b"\\n")`` gives them: the last element
    is what follows the last newline); index the entries for the chain checks.

    The fast path takes a line in the exact layout (``audit.lines``) whose body re-serialises
    to the same bytes (so it is canonical) and hashes the stored bytes; any other line goes to
    :func:`audit.lines.inspect_line` (the same verdict, with the reason)."""
    tail = lines.pop()
    chains: list[str] = []
    seqs = array("q")
    lnos = array("q")
    offs = array("q")
    hashes = bytearray()
    states: list[tuple[str | None, str]] = []
    recomputed: dict[int, bytes] = {}
    suspect: set[int] = set()
    refs: dict[str, tuple[str, int]] = {}
    problems: list[_Problem] = []
    interned: dict[Any, Any] = {}
    intern = interned.setdefault
    legacy = 0
    offset = start
    sha = _sha256
    tag = ENTRY_TAG
    mark = TAIL_MARK
    sep = _HASH_SEP
    writer_key = _WRITER
    hexdigits = _HEX
    loads = _loads
    dumps = _dumps
    sort_strict = _SORT_STRICT
    suspicious = _SUSPECT_NUMBER.search
    unhex = bytes.fromhex
    e: Any
    for lno, raw in enumerate(lines, 1):
        here = offset
        offset += len(raw) + 1
        e = None
        k = raw.rfind(mark)
        if (
            k > 0
            and raw[-1] == 0x7D  # "}"
            and raw[k + 78 : k + 88] == sep
            and raw[k + 152 : k + 153] == b'"'
        ):
            p = raw[k + 14 : k + 78]
            h = raw[k + 88 : k + 152]
            rest = raw[k + 153 :]
            if not (p.translate(None, hexdigits) or h.translate(None, hexdigits)):
                try:
                    if rest != b"}":
                        if rest[:10] != writer_key:
                            raise ValueError
                        loads(rest[10:-1])  # one JSON object, nothing after it
                    body = raw[:k] + b"}"
                    e = loads(body)  # ends in "}": an object
                    # OPT_STRICT_INTEGER refuses ints beyond 2**53; orjson refuses nesting
                    # deeper than MAX_NESTING (a test pins that); any other difference (keys,
                    # escapes, spaces, duplicates) makes the bytes differ.
                    if (
                        dumps(e, option=sort_strict) != body
                        or "hash" in e
                        or "prev_hash" in e
                        or "writer" in e
                        or ((strict or suspicious(body) is not None) and not in_subset(e))
                    ):
                        e = None
                except (ValueError, TypeError):  # JSONDecodeError is a ValueError
                    e = None
        if e is not None:
            prev = unhex(p.decode())
            stored = unhex(h.decode())
            digest = sha(tag + prev + body).digest()  # over the stored bytes, as stored
            trusted = True
        else:
            slow = _slow_line(raw, lno, problems)
            if slow is None:
                continue
            e, prev, stored, digest, trusted, was_legacy = slow
            legacy += was_legacy
        ev = e.get("event")
        d = e.get("docket")
        seq: Any = None
        cid: Any = None
        eid: Any = None
        frm: Any = None
        to: Any = None
        if type(ev) is dict:
            seq = ev.get("sequence")
            eid = ev.get("id")
        if type(d) is dict:
            cid = d.get("chain_id")
            frm = d.get("from_state")
            to = d.get("to_state")
        if cid is None and type(eid) is str:
            cid = chain_of_event_id(eid)
        if (
            type(cid) is not str
            or not cid
            or type(seq) is not int
            or seq < 1
            or eid != f"{cid}:{seq}"
            or type(to) is not str
            or not (frm is None or type(frm) is str)
        ):
            problems.append(_invalid(cid, seq, eid, frm, to, lno))
            continue
        n = len(chains)
        if digest != stored:
            recomputed[n] = digest
        if not trusted:
            suspect.add(n)
        chains.append(intern(cid, cid))
        seqs.append(seq)
        lnos.append(lno)
        offs.append(here)
        hashes += prev
        hashes += stored
        states.append(intern((frm, to), (frm, to)))
        assert type(d) is dict  # checked with to_state above
        appeal = d.get("appeal")
        if type(appeal) is dict:
            ref = appeal.get("chain_id")
            if type(ref) is str and ref and ref != cid:
                refs.setdefault(ref, (cid, seq))
        data = d.get("data")
        if type(data) is dict and "parent_chain_id" in data:
            ref = data["parent_chain_id"]
            if type(ref) is str and ref and ref != cid:
                refs.setdefault(ref, (cid, seq))
    nlines = len(lines)
    if tail:
        nlines += 1
        problems.append(
            (
                "torn_tail",
                None,
                None,
                nlines,
                f"{len(tail)} bytes without newline",
                "a complete line",
                "a writer died mid-write; the unacknowledged line is ignored (its retry is "
                "in another segment); keep the file, do not repair it",
            )
        )
    return _ChunkResult(
        file_idx,
        nlines,
        chains,
        seqs,
        lnos,
        offs,
        hashes,
        states,
        recomputed,
        suspect,
        refs,
        problems,
        legacy,
    )


# --------------------------------------------------------------------------------------------
# Merging and checking


# Reads the line of file ``file_idx`` that starts at ``offset`` (without its newline).
_LineAt = Callable[[int, int], bytes]


def _file_line_at(files: Sequence[Path]) -> _LineAt:
    def line_at(file_idx: int, offset: int) -> bytes:
        with open(files[file_idx], "rb") as f:
            f.seek(offset)
            return f.readline().rstrip(b"\n")

    return line_at


def _body_digest(raw: bytes) -> str | None:
    """sha256 of the canonical body of a line (duplicate vs conflict)."""
    entry = inspect_line(raw).entry
    if entry is None:
        return None
    try:
        body = canonical({k: v for k, v in entry.items() if k not in UNHASHED_KEYS})
    except CanonicalError:
        return None
    return _sha256(body).hexdigest()


def load_anchors(path: str | os.PathLike[str]) -> list[AuditAnchor]:
    """Anchors from a JSON array or JSON lines of {chain_id|workflow_id, count, head_hash}.

    Objects may also be whole workflow results holding the anchor under "audit" or "anchor".
    Raises ValueError with the line/index on malformed input.
    """
    text = Path(path).read_bytes()
    stripped = text.strip()
    items: list[tuple[str, Any]] = []
    if stripped.startswith(b"["):
        try:
            arr = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        items = [(f"{path}[{i}]", v) for i, v in enumerate(arr)]
    else:
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append((f"{path}:{i}", orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path}:{i}: not valid JSON ({exc})") from None
    anchors: list[AuditAnchor] = []
    for where, obj in items:
        if not isinstance(obj, dict):
            raise ValueError(f"{where}: anchor must be a JSON object")
        for nested in ("audit", "anchor", "audit_anchor"):
            inner = obj.get(nested)
            if isinstance(inner, dict) and "head_hash" in inner:
                merged = dict(inner)
                merged.setdefault("chain_id", obj.get("chain_id", obj.get("workflow_id")))
                obj = merged
                break
        try:
            anchors.append(AuditAnchor.from_dict(obj))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return anchors


def verify_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    anchors: Sequence[AuditAnchor] = (),
    anchors_are_prefixes: bool = False,
    jobs: int | None = None,
    strict: bool = False,
    progress: Progress | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> VerifyResult:
    """Verify every segment under ``paths`` (files or directories) against optional anchors.

    ``anchors_are_prefixes``: anchors are checkpoints, the log may have grown past them.
    ``jobs``: worker processes for hashing (default: all CPUs when the log is large, else 1).
    ``strict``: check every body against the canonical subset, not only suspicious ones.
    ``progress``: told the log's size, then each chunk's as it is checked. ``chunk_bytes``:
    how much of a segment one task reads (does not change the result).
    Raises :class:`audit.reader.MissingInput` (a FileNotFoundError) for a path that does not
    exist; what cannot be read under the paths is reported as findings.
    """
    return verify_inputs(
        discover(paths),
        anchors=anchors,
        anchors_are_prefixes=anchors_are_prefixes,
        jobs=jobs,
        strict=strict,
        progress=progress,
        chunk_bytes=chunk_bytes,
    )


def verify_inputs(
    inputs: Inputs,
    *,
    anchors: Sequence[AuditAnchor] = (),
    anchors_are_prefixes: bool = False,
    jobs: int | None = None,
    strict: bool = False,
    progress: Progress | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> VerifyResult:
    """:func:`verify_paths` on inputs already discovered (``audit.reader.discover``)."""
    result = VerifyResult(ignored=[str(p) for p in inputs.ignored])
    for problem in inputs.problems:
        result.findings.append(
            Finding(problem.code, problem.message, file=problem.path, found=problem.found)
        )
    files: list[Path] = []
    chunks: list[Chunk] = []
    for path in inputs.files:  # a file may have become unreadable since discovery
        try:
            planned = plan_chunks([path], chunk_bytes)
        except OSError as exc:
            result.findings.append(
                Finding(
                    "unreadable",
                    "the segment could not be read; its entries were not checked: fix access "
                    "and verify again",
                    file=str(path),
                    found=f"{type(exc).__name__}: {exc.strerror or exc}",
                )
            )
            continue
        idx = len(files)
        files.append(path)
        chunks += [Chunk(idx, c.path, c.start, c.end, c.last) for c in planned]
    result.files = len(files)
    total = sum(c.size for c in chunks)
    if progress is not None:
        progress.start(total, "verify")
    advance: Callable[[int], None] | None = progress.advance if progress is not None else None
    scans: list[_ChunkResult] = []
    index: _Index = {}
    with gc_paused():  # the index holds ~2 tuples per entry, none cyclic
        try:
            for s in map_chunks(
                partial(_scan, strict=strict),
                chunks,
                jobs=jobs,
                progress=advance,
                while_waiting=_import_lifecycle,  # for the merge, while the workers scan
            ):
                _index_scan(index, len(scans), s)  # while the workers scan the next chunks
                scans.append(s)
        finally:
            if progress is not None:
                progress.finish()
        line_at = _file_line_at(files)
        _check(result, files, scans, anchors, anchors_are_prefixes, line_at, index)
    return result


def verify_bytes(
    data: bytes,
    *,
    name: str = "<bytes>",
    anchors: Sequence[AuditAnchor] = (),
    anchors_are_prefixes: bool = False,
    strict: bool = False,
) -> VerifyResult:
    """Verify one segment's bytes held in memory (findings name the file ``name``)."""
    result = VerifyResult(files=1)
    if not data:
        result.findings.append(
            Finding("empty_file", "the segment holds no bytes", file=name, found="0 bytes")
        )
    with gc_paused():
        scans = [_scan_lines(data.split(b"\n"), 0, 0, strict)]
        _import_lifecycle()

        def line_at(_file_idx: int, offset: int) -> bytes:
            end = data.find(b"\n", offset)
            return data[offset : end if end >= 0 else len(data)]

        _check(result, [Path(name)], scans, anchors, anchors_are_prefixes, line_at)
    return result


def _import_lifecycle() -> object:
    import docket.lifecycle

    return docket.lifecycle


# A located record: (scan index, record index)
_Loc = tuple[int, int]
# chain -> sequence -> where the entry is (or every place, when there are several copies)
_Index = dict[str, dict[int, Any]]


def _index_scan(index: _Index, si: int, s: _ChunkResult) -> None:
    seqs = s.seqs
    for ri, cid in enumerate(s.chains):
        m = index.get(cid)
        if m is None:
            m = index[cid] = {}
        seq = seqs[ri]
        cur = m.get(seq)
        if cur is None:
            m[seq] = (si, ri)
        elif type(cur) is list:
            cur.append((si, ri))
        else:
            m[seq] = [cur, (si, ri)]


def _check(
    result: VerifyResult,
    files: Sequence[Path],
    scans: Sequence[_ChunkResult],
    anchors: Sequence[AuditAnchor],
    anchors_are_prefixes: bool,
    line_at: _LineAt,
    index: _Index | None = None,
) -> None:
    """Every check that needs the whole log. ``index``: :func:`_index_scan` of every scan,
    when the caller built it while the scans came in."""
    from docket.lifecycle import TERMINAL  # the one list of terminal states

    terminal: frozenset[Any] = TERMINAL
    findings = result.findings
    line_base: list[int] = []
    per_file_lines: dict[int, int] = {}
    for s in scans:
        base = per_file_lines.get(s.file_idx, 0)
        line_base.append(base)
        per_file_lines[s.file_idx] = base + s.nlines
        result.legacy_lines += s.legacy
    result.lines = sum(per_file_lines.values())

    def where(si: int, ri: int) -> tuple[str, int]:
        s = scans[si]
        return str(files[s.file_idx]), line_base[si] + s.lines[ri]

    for si, s in enumerate(scans):
        for code, cid, seq, rel, found, expected, msg in s.problems:
            findings.append(
                Finding(
                    code,
                    msg,
                    cid,
                    seq,
                    str(files[s.file_idx]),
                    line_base[si] + rel,
                    found,
                    expected,
                )
            )

    if index is None:
        index = {}
        for si, s in enumerate(scans):
            _index_scan(index, si, s)

    def fields(loc: _Loc) -> tuple[bytes, bytes, bytes]:
        """(prev_hash, stored hash, recomputed hash) digests."""
        s = scans[loc[0]]
        at = loc[1] * 64
        raw = s.hashes[at : at + 64]
        stored = bytes(raw[32:])
        return bytes(raw[:32]), stored, s.recomputed.get(loc[1], stored)

    entries = 0
    heads = result.heads
    for cid in sorted(index):
        m = index[cid]
        expected_prev: bytes | None = bytes.fromhex(genesis_hash(cid))
        last = 0
        head = b""
        prev_to: str | None = None  # the previous entry's to_state
        prev_known = True  # the previous entry is there and trustworthy
        for seq in sorted(m):
            entries += 1
            cur = m[seq]
            if seq != last + 1:
                f, ln = where(*(cur[0] if type(cur) is list else cur))
                findings.append(
                    Finding(
                        "gap",
                        f"sequence {last + 1}..{seq - 1} missing before this entry: entries were"
                        " deleted or a segment is missing; look for other segments/backups",
                        cid,
                        seq,
                        f,
                        ln,
                        seq,
                        last + 1,
                    )
                )
                expected_prev = None  # unknown: do not also report a chain_break here
                prev_known = False
            conflicted = False
            if type(cur) is list:
                loc, conflicted = _resolve_copies(
                    result, cid, seq, cur, fields, where, expected_prev, line_at, scans
                )
            else:
                loc = cur
            si, ri = loc
            s = scans[si]
            pos = ri * 64
            prev = bytes(s.hashes[pos : pos + 32])
            stored = bytes(s.hashes[pos + 32 : pos + 64])
            intact = True
            if s.recomputed and ri in s.recomputed:
                intact = False
                f, ln = where(si, ri)
                findings.append(
                    Finding(
                        "hash_mismatch",
                        "the entry's body or hash was altered after it was written; compare with "
                        "backups/Temporal history (python -m audit show) before trusting it",
                        cid,
                        seq,
                        f,
                        ln,
                        stored.hex(),
                        s.recomputed[ri].hex(),
                    )
                )
            if expected_prev is not None and prev != expected_prev:
                f, ln = where(si, ri)
                findings.append(
                    Finding(
                        "chain_break",
                        "prev_hash does not link to the previous entry: entries were swapped, "
                        "replaced or re-hashed; check the neighbouring entries",
                        cid,
                        seq,
                        f,
                        ln,
                        prev.hex(),
                        expected_prev.hex(),
                    )
                )
            frm, to = s.states[ri]
            trusted = intact and not conflicted and ri not in s.suspect
            if trusted and prev_known and (frm != prev_to or prev_to in terminal):
                _lifecycle(findings, cid, seq, frm, prev_to, where(si, ri), terminal)
            prev_to, prev_known = to, trusted
            expected_prev = stored
            last = seq
            head = stored
        heads[cid] = AuditAnchor(cid, last, head.hex())
    result.entries = entries
    result.chains = len(index)

    for s in scans:
        for ref, (src, seq) in s.refs.items():
            if ref not in index:
                findings.append(
                    Finding(
                        "missing_chain",
                        f"chain {ref} is referenced by {src}#{seq} but has no entries; locate "
                        "its segments",
                        ref,
                        None,
                        str(files[s.file_idx]),
                        None,
                        "absent",
                        f"referenced by {src}#{seq}",
                    )
                )
    for a in anchors:
        result.anchors_checked += 1
        got = result.heads.get(a.chain_id)
        if got is None:
            findings.append(
                Finding(
                    "missing_chain",
                    "the anchor names a chain with no entries in these files: the chain's "
                    "segments were deleted or not supplied",
                    a.chain_id,
                    None,
                    None,
                    None,
                    "absent",
                    f"{a.count} entries, head {a.head_hash}",
                )
            )
            continue
        m = index[a.chain_id]
        at = m.get(a.count)
        at_hash = fields(at[0] if type(at) is list else at)[1].hex() if at is not None else None
        if anchors_are_prefixes:
            bad = at_hash != a.head_hash
        else:
            bad = got.count != a.count or got.head_hash != a.head_hash
        if bad:
            af: str | None = None
            aln: int | None = None
            if at is not None:
                af, aln = where(*(at[0] if type(at) is list else at))
            findings.append(
                Finding(
                    "anchor_mismatch",
                    "the log's chain does not end where the anchor says: entries were deleted "
                    "at the tail, appended, or the chain was rewritten and re-hashed",
                    a.chain_id,
                    a.count,
                    af,
                    aln,
                    f"{got.count} entries, head {got.head_hash}",
                    f"{a.count} entries, head {a.head_hash}",
                )
            )
    findings.sort(
        key=lambda x: (
            x.chain_id or "",
            x.sequence if x.sequence is not None else -1,
            x.file or "",
            x.line or 0,
            x.code,
        )
    )


def _lifecycle(
    findings: list[Finding],
    cid: str,
    seq: int,
    frm: str | None,
    prev_to: str | None,
    at: tuple[str, int],
    terminal: frozenset[Any],
) -> None:
    """An entry must start where the previous one ended, and nothing follows a terminal one."""
    if prev_to is not None and prev_to in terminal:
        findings.append(
            Finding(
                "after_terminal",
                f"the request was already {prev_to} (a terminal state) at entry {seq - 1}; a "
                "closed request never moves again: this entry and any after it were appended "
                "or forged; compare with the Temporal history (reconcile)",
                cid,
                seq,
                at[0],
                at[1],
                f"an entry after {prev_to}",
                "no entry",
            )
        )
    elif frm != prev_to:
        findings.append(
            Finding(
                "state_mismatch",
                "the entry does not start where the previous one ended"
                + (" (the first entry starts from none)" if seq == 1 else "")
                + ": entries were dropped, reordered or forged; compare with the Temporal "
                "history (reconcile)",
                cid,
                seq,
                at[0],
                at[1],
                f"from_state {frm or 'none'}",
                f"from_state {prev_to or 'none'}",
            )
        )


def _resolve_copies(
    result: VerifyResult,
    cid: str,
    seq: int,
    locs: list[_Loc],
    fields: Any,
    where: Any,
    expected_prev: bytes | None,
    line_at: _LineAt,
    scans: Sequence[_ChunkResult],
) -> tuple[_Loc, bool]:
    """Several copies of one event.id: drop identical ones, flag duplicate/conflict, pick one.
    Returns the copy kept and whether the copies disagreed."""
    variants: dict[tuple[bytes, bytes, bytes], _Loc] = {}
    for loc in locs:
        key = fields(loc)
        if key in variants:
            result.duplicates_dropped += 1
        else:
            variants[key] = loc
    if len(variants) == 1:
        return locs[0], False
    # Prefer a copy that verifies and links; then one that verifies; then the first.
    ordered = sorted(
        variants.items(),
        key=lambda kv: (
            kv[0][1] != kv[0][2],
            expected_prev is not None and kv[0][0] != expected_prev,
        ),
    )
    keep_key, keep = ordered[0]
    digests = set()
    for loc in variants.values():
        s = scans[loc[0]]
        digests.add(_body_digest(line_at(s.file_idx, s.offsets[loc[1]])))
    for key, loc in ordered[1:]:
        f, ln = where(*loc)
        kf, kl = where(*keep)
        if len(digests) == 1:
            result.findings.append(
                Finding(
                    "duplicate",
                    f"same body as {kf}:{kl} but different prev_hash/hash: this copy's chain "
                    "fields were altered; the copy that verifies was kept",
                    cid,
                    seq,
                    f,
                    ln,
                    f"prev_hash {key[0].hex()}, hash {key[1].hex()}",
                    f"prev_hash {keep_key[0].hex()}, hash {keep_key[1].hex()}",
                )
            )
        else:
            result.findings.append(
                Finding(
                    "conflict",
                    f"{cid}:{seq} also appears with a different body at {kf}:{kl}: one of them "
                    "is forged or rewritten; compare both with the Temporal history (reconcile)",
                    cid,
                    seq,
                    f,
                    ln,
                    f"hash {key[1].hex()}",
                    f"hash {keep_key[1].hex()}",
                )
            )
    return keep, True
