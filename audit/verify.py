"""Verify audit segments offline (CloudTrail validate-logs style).

All segments are merged; entries are grouped by chain (``docket.chain_id``, else the prefix of
``event.id``) and sequence. Identical copies of an entry (same event.id, body, prev_hash and
hash; writer metadata may differ) are the expected result of activity retries: they are dropped
and counted as ``duplicates_dropped``. Everything else is a :class:`Finding`:

==============  ==============================================================================
code            meaning
==============  ==============================================================================
unparseable     a line is not a JSON object (bit rot, manual edit, or a torn line mid-file)
invalid_entry   a JSON object that is not a well-formed entry (missing/ill-typed chain fields,
                event.id != "<chain_id>:<sequence>", a value outside the canonical subset)
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
missing_chain   a chain named by an anchor (or referenced by another chain) has no entries
anchor_mismatch the chain's entry count or head hash differs from the anchor the auditor holds:
                a deleted tail, appended entries, or a re-hashed (rewritten) chain
==============  ==============================================================================
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from audit.canonical import CanonicalError, check_canonicalizable
from audit.chain import ENTRY_TAG, genesis_hash, is_hex64
from audit.entry import AuditAnchor
from audit.reader import find_segments

__all__ = [
    "FINDING_CODES",
    "Finding",
    "VerifyResult",
    "load_anchors",
    "verify_paths",
]

FINDING_CODES = (
    "hash_mismatch",
    "chain_break",
    "gap",
    "duplicate",
    "conflict",
    "torn_tail",
    "missing_chain",
    "anchor_mismatch",
    "unparseable",
    "invalid_entry",
)

_SORT = orjson.OPT_SORT_KEYS
_loads = orjson.loads
_dumps = orjson.dumps
_sha256 = hashlib.sha256
# A member value that is a number with a fraction/exponent or 16+ digits: only then can the
# body hold a value outside the canonical subset (float, int beyond 2**53), so only then do we
# pay for the full recursive check (``strict`` checks every entry, also numbers in arrays and
# non-ASCII keys).
_SUSPECT_NUMBER = re.compile(rb'":-?\d+(?:[.eE]|\d{15})')
_PARALLEL_MIN_BYTES = 32 * 1024 * 1024
_CHUNK_BYTES = 16 * 1024 * 1024


@dataclass(slots=True)
class Finding:
    code: str
    message: str
    chain_id: str | None = None
    sequence: int | None = None
    file: str | None = None
    line: int | None = None
    found: Any = None
    expected: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "chain_id": self.chain_id,
            "sequence": self.sequence,
            "file": self.file,
            "line": self.line,
            "found": self.found,
            "expected": self.expected,
            "message": self.message,
        }

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.file else "-"
        who = f"{self.chain_id}#{self.sequence}" if self.sequence is not None else self.chain_id
        head = f"{self.code:<15} {who or '-'}  ({where})"
        if self.found is not None or self.expected is not None:
            head += f"\n    found:    {self.found}\n    expected: {self.expected}"
        return f"{head}\n    {self.message}"


@dataclass(slots=True)
class VerifyResult:
    files: int = 0
    lines: int = 0
    entries: int = 0  # distinct entries after dropping identical duplicates
    chains: int = 0
    duplicates_dropped: int = 0
    anchors_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    heads: dict[str, AuditAnchor] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    def by_code(self) -> dict[str, int]:
        counts = Counter(f.code for f in self.findings)
        return {code: counts[code] for code in FINDING_CODES if counts[code]}

    def summary(self) -> dict[str, Any]:
        return {
            "status": "OK" if self.ok else "FAILED",
            "files": self.files,
            "lines": self.lines,
            "entries": self.entries,
            "chains": self.chains,
            "duplicates_dropped": self.duplicates_dropped,
            "anchors_checked": self.anchors_checked,
            "findings": len(self.findings),
            "findings_by_code": self.by_code(),
        }

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "findings": [f.to_dict() for f in self.findings]}


# --------------------------------------------------------------------------------------------
# Scanning (runs in worker processes when the log is large)


@dataclass(slots=True)
class _Chunk:
    file_idx: int
    path: str
    start: int
    end: int
    last: bool  # the chunk ends at end of file
    strict: bool = False


@dataclass(slots=True)
class _ChunkResult:
    file_idx: int
    start: int
    nlines: int
    chains: list[str]
    seqs: array  # type: ignore[type-arg]
    lines: array  # type: ignore[type-arg]  # 1-based line number within the chunk
    offsets: array  # type: ignore[type-arg]  # absolute byte offset of the line
    hashes: bytearray  # 64 bytes per record: prev_hash digest || stored hash digest
    recomputed: dict[int, str]  # record index -> recomputed hash, only where it differs
    refs: dict[str, tuple[str, int]]  # referenced chain id -> (referencing chain, seq)
    # (code, chain, seq, rel_line, found, expected, message)
    problems: list[tuple[str, str | None, int | None, int, Any, Any, str]]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic collector: our scans and indexes create millions of small objects,
    none cyclic, and the collector would only rescan them again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_lines(chunk: _Chunk) -> list[bytes]:
    """The chunk's lines; the last element is what follows the last newline (b"" or a torn
    tail)."""
    with open(chunk.path, "rb") as f:
        f.seek(chunk.start)
        return f.read(chunk.end - chunk.start).split(b"\n")


def _scan(chunk: _Chunk) -> _ChunkResult:
    with _gc_paused():
        return _scan_chunk(chunk)


def _scan_chunk(chunk: _Chunk) -> _ChunkResult:
    lines = _read_lines(chunk)
    tail = lines.pop()
    chains: list[str] = []
    seqs = array("q")
    lnos = array("q")
    offs = array("q")
    hashes = bytearray()
    recomputed: dict[int, str] = {}
    refs: dict[str, tuple[str, int]] = {}
    problems: list[tuple[str, str | None, int | None, int, Any, Any, str]] = []
    interned: dict[str, str] = {}
    offset = chunk.start
    fromhex = bytes.fromhex
    for lno, raw in enumerate(lines, 1):
        here = offset
        offset += len(raw) + 1
        try:
            e = _loads(raw)
        except orjson.JSONDecodeError as exc:
            problems.append(
                ("unparseable", None, None, lno, None, None, f"line is not valid JSON ({exc})")
            )
            continue
        if type(e) is not dict:
            problems.append(("unparseable", None, None, lno, None, None, "not a JSON object"))
            continue
        h = e.pop("hash", None)
        p = e.pop("prev_hash", None)
        e.pop("writer", None)
        ev = e.get("event")
        d = e.get("docket")
        seq: Any = None
        cid: Any = None
        eid: Any = None
        if type(ev) is dict:
            seq = ev.get("sequence")
            eid = ev.get("id")
        if type(d) is dict:
            cid = d.get("chain_id")
        if cid is None and type(eid) is str:
            cid = eid.rpartition(":")[0]
        why = None
        if type(cid) is not str or not cid:
            why = "no docket.chain_id / event.id"
        elif type(seq) is not int or seq < 1:
            why = f"event.sequence must be an int >= 1, got {seq!r}"
        elif eid != f"{cid}:{seq}":
            why = f"event.id {eid!r} is not '<chain_id>:<sequence>' ({cid}:{seq})"
        elif not is_hex64(h):
            why = f"hash must be 64 lowercase hex characters, got {h!r}"
        elif not is_hex64(p):
            why = f"prev_hash must be 64 lowercase hex characters, got {p!r}"
        if why is not None:
            c = cid if type(cid) is str else None
            s = seq if type(seq) is int else None
            problems.append(("invalid_entry", c, s, lno, None, None, why))
            continue
        # Fast path: writers emit the body with sorted keys, so the parse keeps that order and an
        # unsorted dump reproduces the canonical bytes. If it does not verify, retry sorted: a
        # match of the unsorted bytes implies they are the canonical bytes (same preimage).
        body = _dumps(e)
        if chunk.strict or _SUSPECT_NUMBER.search(body) is not None:
            try:
                check_canonicalizable(e)
            except CanonicalError as exc:
                problems.append(
                    ("invalid_entry", cid, seq, lno, None, None, f"non-canonical value: {exc}")
                )
                continue
        prev = fromhex(p)
        digest = _sha256(ENTRY_TAG + prev + body).digest()
        stored = fromhex(h)
        if digest != stored:
            digest = _sha256(ENTRY_TAG + prev + _dumps(e, option=_SORT)).digest()
        if digest != stored:
            recomputed[len(chains)] = digest.hex()
        c2 = interned.get(cid)
        if c2 is None:
            c2 = interned[cid] = cid
        chains.append(c2)
        seqs.append(seq)
        lnos.append(lno)
        offs.append(here)
        hashes += prev
        hashes += stored
        if type(d) is dict:
            for holder, key in ((d.get("appeal"), "chain_id"), (d.get("data"), "parent_chain_id")):
                if type(holder) is dict:
                    ref = holder.get(key)
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
        chunk.file_idx,
        chunk.start,
        nlines,
        chains,
        seqs,
        lnos,
        offs,
        hashes,
        recomputed,
        refs,
        problems,
    )


def _chunks(files: Sequence[Path], chunk_bytes: int) -> list[_Chunk]:
    out: list[_Chunk] = []
    for idx, path in enumerate(files):
        size = path.stat().st_size
        start = 0
        with open(path, "rb") as f:
            while start < size:
                end = start + chunk_bytes
                if end >= size:
                    end = size
                else:
                    f.seek(end)
                    rest = f.readline()  # extend to the end of the current line
                    end += len(rest)
                out.append(_Chunk(idx, str(path), start, end, end >= size))
                start = end
        if size == 0:
            out.append(_Chunk(idx, str(path), 0, 0, True))
    return out


# --------------------------------------------------------------------------------------------
# Merging and checking


def _body_digest(path: str, offset: int) -> str | None:
    """sha256 of the canonical body of the line at offset (duplicate vs conflict)."""
    with open(path, "rb") as f:
        f.seek(offset)
        raw = f.readline().rstrip(b"\n")
    try:
        e = _loads(raw)
    except orjson.JSONDecodeError:
        return None
    for k in ("hash", "prev_hash", "writer"):
        e.pop(k, None)
    return _sha256(_dumps(e, option=_SORT)).hexdigest()


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
) -> VerifyResult:
    """Verify every segment under ``paths`` (files or directories) against optional anchors.

    ``anchors_are_prefixes``: anchors are checkpoints, the log may have grown past them.
    ``jobs``: worker processes for hashing (default: all CPUs when the log is large, else 1).
    ``strict``: check every body against the canonical subset, not only suspicious ones.
    Raises FileNotFoundError for a missing path.
    """
    files = find_segments(paths)
    result = VerifyResult(files=len(files))
    chunks = _chunks(files, _CHUNK_BYTES)
    for c in chunks:
        c.strict = strict
    total = sum(c.end - c.start for c in chunks)
    if jobs is None:
        jobs = (os.cpu_count() or 1) if total >= _PARALLEL_MIN_BYTES else 1
    if jobs > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(chunks))) as pool:
            scans = list(pool.map(_scan, chunks))
    else:
        scans = [_scan(c) for c in chunks]
    with _gc_paused():  # the index holds ~2 tuples per entry, none cyclic
        _check(result, files, scans, anchors, anchors_are_prefixes)
    return result


# A located record: (scan index, record index)
_Loc = tuple[int, int]


def _check(
    result: VerifyResult,
    files: Sequence[Path],
    scans: Sequence[_ChunkResult],
    anchors: Sequence[AuditAnchor],
    anchors_are_prefixes: bool,
) -> None:
    findings = result.findings
    line_base: list[int] = []
    per_file_lines: dict[int, int] = {}
    for s in scans:
        base = per_file_lines.get(s.file_idx, 0)
        line_base.append(base)
        per_file_lines[s.file_idx] = base + s.nlines
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

    # chain -> seq -> loc or list of locs
    index: dict[str, dict[int, Any]] = {}
    for si, s in enumerate(scans):
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

    def fields(loc: _Loc) -> tuple[str, str, str]:
        """(prev_hash, stored hash, recomputed hash) as hex."""
        s = scans[loc[0]]
        raw = s.hashes[loc[1] * 64 : loc[1] * 64 + 64]
        prev, stored = raw[:32].hex(), raw[32:].hex()
        return prev, stored, s.recomputed.get(loc[1], stored)

    entries = 0
    for cid in sorted(index):
        m = index[cid]
        expected_prev: str | None = genesis_hash(cid)
        last = 0
        head = ""
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
            if type(cur) is list:
                loc = _resolve_copies(
                    result, cid, seq, cur, fields, where, expected_prev, files, scans
                )
            else:
                loc = cur
            prev, stored, recomputed = fields(loc)
            if recomputed != stored:
                f, ln = where(*loc)
                findings.append(
                    Finding(
                        "hash_mismatch",
                        "the entry's body or hash was altered after it was written; compare with "
                        "backups/Temporal history (python -m audit show) before trusting it",
                        cid,
                        seq,
                        f,
                        ln,
                        stored,
                        recomputed,
                    )
                )
            if expected_prev is not None and prev != expected_prev:
                f, ln = where(*loc)
                findings.append(
                    Finding(
                        "chain_break",
                        "prev_hash does not link to the previous entry: entries were swapped, "
                        "replaced or re-hashed; check the neighbouring entries",
                        cid,
                        seq,
                        f,
                        ln,
                        prev,
                        expected_prev,
                    )
                )
            expected_prev = stored
            last = seq
            head = stored
        result.heads[cid] = AuditAnchor(cid, last, head)
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
        at_hash = fields(at[0] if type(at) is list else at)[1] if at is not None else None
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


def _resolve_copies(
    result: VerifyResult,
    cid: str,
    seq: int,
    locs: list[_Loc],
    fields: Any,
    where: Any,
    expected_prev: str | None,
    files: Sequence[Path],
    scans: Sequence[_ChunkResult],
) -> _Loc:
    """Several copies of one event.id: drop identical ones, flag duplicate/conflict, pick one."""
    variants: dict[tuple[str, str, str], _Loc] = {}
    for loc in locs:
        key = fields(loc)
        if key in variants:
            result.duplicates_dropped += 1
        else:
            variants[key] = loc
    if len(variants) == 1:
        return locs[0]
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
        digests.add(_body_digest(str(files[s.file_idx]), s.offsets[loc[1]]))
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
                    f"prev_hash {key[0]}, hash {key[1]}",
                    f"prev_hash {keep_key[0]}, hash {keep_key[1]}",
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
                    f"hash {key[1]}",
                    f"hash {keep_key[1]}",
                )
            )
    return keep
