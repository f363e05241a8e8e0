"""``audit verify --checkpoint FILE --key PUB``: the log holds exactly the checkpointed entries.

With only the signed checkpoint, the log's public key, the segments and the recorded order
(``order.jsonl`` from the checkpointer's directory), this re-reads the checkpointed byte ranges
in the recorded order, hashes every line as an RFC 6962 leaf and recomputes the root. A match
proves that nothing was removed, altered, reordered or inserted in the first ``size`` entries
(and that the order index was not rewritten: the root commits to the lines in that order).
Lines after the checkpointed ranges are reported as not yet checkpointed (informational).

If the checkpointer's tree directory is at hand and its root equals the signed root, its leaf
hashes are authentic (they hash to the signed root), so every changed line is named by
file:line; without it a change shows as one ``checkpoint_mismatch`` for the whole log.

Findings: ``bad_checkpoint_signature``, ``missing_entry``, ``checkpoint_mismatch``,
``index_invalid``; notes: ``not_in_checkpoint``.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from audit.chain import chain_of_event_id
from audit.checkpoint import Checkpoint, open_checkpoint
from audit.checkpoint_store import OrderError, OrderRecord, StoreError, TreeStore, read_order
from audit.findings import Finding
from audit.merkle import RootBuilder
from audit.note import NoteError, VerifierKey
from audit.reader import find_segments

__all__ = ["CHECKPOINT_FINDING_CODES", "CompletenessResult", "verify_completeness"]

CHECKPOINT_FINDING_CODES = (
    "bad_checkpoint_signature",
    "index_invalid",
    "missing_entry",
    "checkpoint_mismatch",
)
MAX_LEAF_FINDINGS = 100
_READ = 8 * 1024 * 1024


@dataclass(slots=True)
class CompletenessResult:
    checkpoint: Checkpoint | None = None
    checkpoint_file: str = ""
    order_file: str = ""
    located: bool = False  # a trusted tree named the changed lines
    entries_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    not_checkpointed: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> dict[str, Any]:
        cp = self.checkpoint
        counts = Counter(f.code for f in self.findings)
        return {
            "status": "OK" if self.ok else "FAILED",
            "checkpoint": self.checkpoint_file,
            "origin": cp.origin if cp else None,
            "tree_size": cp.size if cp else None,
            "root_hash": cp.root.hex() if cp else None,
            "order_index": self.order_file,
            "entries_checked": self.entries_checked,
            "not_yet_checkpointed": self.not_checkpointed,
            "findings": len(self.findings),
            "findings_by_code": {c: counts[c] for c in CHECKPOINT_FINDING_CODES if counts[c]},
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "findings": [f.to_dict() for f in self.findings],
            "notes": [n.to_dict() for n in self.notes],
        }

    def render_summary(self) -> str:
        s = self.summary()
        if self.checkpoint is None:
            return f"checkpoint {s['status']}: {self.checkpoint_file} could not be used"
        text = (
            f"checkpoint {s['status']}: {s['origin']} size {s['tree_size']}: "
            f"{s['entries_checked']} entries checked in the recorded order, "
            f"{s['not_yet_checkpointed']} not yet checkpointed, {s['findings']} findings"
        )
        if s["findings"]:
            text += " (" + ", ".join(f"{k}={v}" for k, v in s["findings_by_code"].items()) + ")"
        return text


def default_order_file(checkpoint_file: Path) -> Path:
    """order.jsonl beside the checkpoint, or one level up (for checkpoints/<size>)."""
    for d in (checkpoint_file.parent, checkpoint_file.parent.parent):
        if (d / "order.jsonl").exists():
            return d / "order.jsonl"
    return checkpoint_file.parent / "order.jsonl"


def _resolver(files: Iterable[Path]) -> dict[str, list[Path]]:
    by_name: dict[str, list[Path]] = {}
    for f in files:
        by_name.setdefault(f.name, []).append(f)
    return by_name


def _locate(by_name: dict[str, list[Path]], rec: OrderRecord) -> Path | None:
    cands = by_name.get(rec.path.rsplit("/", 1)[-1], [])
    if len(cands) > 1:
        exact = [c for c in cands if c.as_posix().endswith("/" + rec.path)]
        labelled = [c for c in exact if f"/{rec.source}/" in c.as_posix()]
        cands = labelled or exact or cands
    return cands[0] if cands else None


def _entry_label(raw: bytes) -> tuple[str | None, int | None]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(value, dict):
        return None, None
    ev = value.get("event")
    eid = ev.get("id") if isinstance(ev, dict) else None
    seq = ev.get("sequence") if isinstance(ev, dict) else None
    if isinstance(eid, str) and ":" in eid:
        return chain_of_event_id(eid), seq if type(seq) is int else None
    return None, None


def verify_completeness(
    paths: Iterable[str | os.PathLike[str]],
    checkpoint_file: str | os.PathLike[str],
    key: VerifierKey,
    *,
    order_file: str | os.PathLike[str] | None = None,
    tree_dir: str | os.PathLike[str] | None = None,
) -> CompletenessResult:
    """Check the log under ``paths`` against a signed checkpoint. Raises OSError if the
    checkpoint file cannot be read and FileNotFoundError for a missing path."""
    cp_path = Path(checkpoint_file)
    order_path = Path(order_file) if order_file else default_order_file(cp_path)
    res = CompletenessResult(checkpoint_file=str(cp_path), order_file=str(order_path))
    data = cp_path.read_bytes()
    try:
        signed = open_checkpoint(data, key)
    except NoteError as exc:
        res.findings.append(
            Finding(
                "bad_checkpoint_signature",
                f"the checkpoint is not signed by {key.name}+{key.key_id.hex()} ({exc}): "
                "nothing it says can be trusted; get the checkpoint and the log's public key "
                "again from a trusted channel",
                file=str(cp_path),
            )
        )
        return res
    cp = res.checkpoint = signed.checkpoint
    files = find_segments(paths)
    try:
        records = read_order(order_path)
    except OrderError as exc:
        res.findings.append(
            Finding(
                "index_invalid",
                f"the order index cannot be read ({exc}): restore it from the checkpointer's "
                "directory or a backup",
                file=str(order_path),
            )
        )
        return res
    covered = [r for r in records if r.first < cp.size]
    total = sum(r.count for r in covered)
    if total != cp.size:
        res.findings.append(
            Finding(
                "index_invalid" if total > cp.size else "missing_entry",
                f"the order index records {sum(r.count for r in records)} entries and does not "
                f"end a run at the checkpoint's size {cp.size}: it was truncated or edited "
                "(or is another log's); entries it no longer names cannot be checked",
                file=str(order_path),
                found=total,
                expected=cp.size,
            )
        )
    trusted = _trusted_tree(tree_dir, order_path, cp)
    res.located = trusted is not None
    by_name = _resolver(files)
    builder = RootBuilder()
    complete = total == cp.size
    ends: dict[Path, int] = {}
    lines_at: dict[Path, tuple[int, int]] = {}  # path -> (byte offset, 1-based line there)
    leaf_findings = 0
    try:
        for rec in covered:
            path = _locate(by_name, rec)
            if path is None:
                complete = False
                res.findings.append(
                    Finding(
                        "missing_entry",
                        f"segment {rec.path} (source {rec.source}) held {rec.count} "
                        f"checkpointed entries (leaves {rec.first}..{rec.first + rec.count - 1})"
                        " but is not among the files given: it was deleted, or pass its "
                        "directory",
                        file=rec.path,
                        found="absent",
                        expected=f"{rec.count} entries in bytes {rec.start}..{rec.end}",
                    )
                )
                continue
            first_line = _line_at(path, rec.start, lines_at)
            ok, leaf_findings, n = _check_range(
                res, builder, trusted, path, rec, first_line, leaf_findings
            )
            ends[path] = max(ends.get(path, 0), rec.end)
            if ok:
                lines_at[path] = (rec.end, first_line + n)
            complete = complete and ok
    finally:
        if trusted is not None:
            trusted.close()
    res.entries_checked = builder.size
    if complete:
        root = builder.root()
        if root != cp.root and leaf_findings == 0:
            res.findings.append(
                Finding(
                    "checkpoint_mismatch",
                    f"the {cp.size} checkpointed entries, read in the recorded order, do not "
                    "hash to the signed root: an entry was altered, removed, reordered or "
                    "inserted, or the order index was rewritten"
                    + (
                        ""
                        if res.located
                        else "; give the checkpointer's tree directory (--tree) to name them"
                    ),
                    file=str(order_path),
                    found=root.hex(),
                    expected=cp.root.hex(),
                )
            )
    _not_checkpointed(res, files, ends, lines_at)
    return res


def _line_at(path: Path, offset: int, known: dict[Path, tuple[int, int]]) -> int:
    """The line number at byte ``offset`` (counted once per segment: ranges are contiguous)."""
    at = known.get(path)
    if at is not None and at[0] == offset:
        return at[1]
    count = 1
    with open(path, "rb") as f:
        remaining = offset
        while remaining > 0:
            chunk = f.read(min(_READ, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            count += chunk.count(b"\n")
    return count


def _trusted_tree(
    tree_dir: str | os.PathLike[str] | None, order_path: Path, cp: Checkpoint
) -> TreeStore | None:
    """The checkpointer's tree, if present and its root at the checkpoint's size is signed."""
    directory = Path(tree_dir) if tree_dir else order_path.parent / "tree"
    if not directory.is_dir():
        return None
    try:
        store = TreeStore(directory, create=False)
    except StoreError:
        return None
    # Recompute the root from the stored leaf hashes themselves (not from stored inner nodes):
    # only then is every stored leaf hash known to be the one the checkpoint signed.
    try:
        builder = RootBuilder()
        for start in range(0, cp.size, 65536):
            for h in store.nodes(0, start, min(65536, cp.size - start)):
                builder.add(h)
        if builder.root() == cp.root:
            return store
    except (StoreError, OSError):
        pass
    store.close()
    return None


def _check_range(
    res: CompletenessResult,
    builder: RootBuilder,
    trusted: TreeStore | None,
    path: Path,
    rec: OrderRecord,
    first_line: int,
    leaf_findings: int,
) -> tuple[bool, int, int]:
    """Hash the record's lines into the root, streaming. Returns (the range holds exactly the
    recorded number of lines, leaf findings so far, lines read)."""
    sha = hashlib.sha256
    n = 0
    pending = b""
    remaining = rec.end - rec.start
    with open(path, "rb") as f:
        f.seek(rec.start)
        while remaining > 0:
            chunk = f.read(min(_READ, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            data = pending + chunk if pending else chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                pending = data
                continue
            lines = data[:cut].split(b"\n")
            pending = data[cut + 1 :]
            hashes = [sha(b"\x00" + line).digest() for line in lines]
            expected: list[bytes] = []
            if trusted is not None:
                k = max(0, min(len(lines), rec.count - n))
                expected = trusted.nodes(0, rec.first + n, k) if k else []
            for i, h in enumerate(hashes):
                builder.add(h)
                if trusted is None or (i < len(expected) and h == expected[i]):
                    continue
                leaf_findings += 1
                if leaf_findings <= MAX_LEAF_FINDINGS:
                    res.findings.append(
                        _leaf_finding(
                            path, first_line + n + i, rec, n + i, lines[i], h, expected, i
                        )
                    )
            n += len(lines)
    if remaining > 0:
        res.findings.append(
            Finding(
                "missing_entry",
                f"the segment ends at byte {rec.end - remaining} but the checkpoint covers it "
                f"up to byte {rec.end}: it was truncated; {max(rec.count - n, 1)} checkpointed "
                "entries are gone (restore the file from a backup)",
                file=str(path),
                line=first_line + n,
                found=f"{n} of {rec.count} entries",
                expected=f"{rec.count} entries in bytes {rec.start}..{rec.end}",
            )
        )
        return False, leaf_findings, n
    if n != rec.count or pending:
        res.findings.append(
            Finding(
                "checkpoint_mismatch",
                f"bytes {rec.start}..{rec.end} hold {n} complete lines where the checkpoint "
                f"recorded {rec.count}: entries were inserted, removed or joined in the "
                "checkpointed part of this segment",
                file=str(path),
                line=first_line,
                found=n,
                expected=rec.count,
            )
        )
        return False, leaf_findings, n
    return True, leaf_findings, n


def _leaf_finding(
    path: Path,
    line_no: int,
    rec: OrderRecord,
    pos: int,
    raw: bytes,
    h: bytes,
    expected: list[bytes],
    i: int,
) -> Finding:
    chain, seq = _entry_label(raw)
    if i < len(expected):
        message = (
            f"checkpointed entry {rec.first + pos} is not this line: it was altered, replaced "
            "or moved (this line's bytes differ from what the log held when it was "
            "checkpointed); compare with a backup and the Temporal history"
        )
        want = expected[i].hex()
    else:
        message = "an extra line inside the checkpointed range: an entry was inserted"
        want = "no line"
    return Finding(
        "checkpoint_mismatch",
        message,
        chain_id=chain,
        sequence=seq,
        file=str(path),
        line=line_no,
        found=h.hex(),
        expected=want,
    )


def _not_checkpointed(
    res: CompletenessResult,
    files: Iterable[Path],
    ends: dict[Path, int],
    lines_at: dict[Path, tuple[int, int]],
) -> None:
    """Notes for complete lines after each segment's checkpointed range (torn tails aside)."""
    for path in files:
        start = ends.get(path, 0)
        try:
            with open(path, "rb") as f:
                f.seek(start)
                rest = f.read()
            if not rest:
                continue
            line0 = _line_at(path, start, lines_at)
        except OSError:
            continue
        cut = rest.rfind(b"\n")
        if cut < 0:
            continue
        lines = rest[:cut].split(b"\n")
        chains: Counter[str] = Counter()
        for raw in lines:
            chain, _ = _entry_label(raw)
            chains[chain or "?"] += 1
        res.not_checkpointed += len(lines)
        names = ", ".join(sorted(chains)[:5]) + (
            f" and {len(chains) - 5} more" if len(chains) > 5 else ""
        )
        res.notes.append(
            Finding(
                "not_in_checkpoint",
                f"{len(lines)} entries (chains {names}) come after the checkpointed part of "
                "this segment: not yet checkpointed (the next checkpoint will cover them; "
                "until then they are only as trustworthy as the files)",
                file=str(path),
                line=line0,
                found=len(lines),
                expected=0,
            )
        )
