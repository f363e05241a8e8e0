"""Proof bundles: one request's entries, their inclusion proofs and the signed checkpoint.

``python -m audit prove REQUEST_ID`` writes a JSON file::

    {"format": "docket-audit-bundle/v1", "request_id": ..., "checkpoint": "<signed note>",
     "entries": [{"index": i, "line": "<the stored line, exactly>", "proof": [base64, ...]}]}

``python -m audit verify-bundle FILE --key PUB`` checks it offline, without the log:

1. the checkpoint verifies with the log's public key (C2SP signed note, Ed25519);
2. each line's leaf hash SHA-256(0x00 || line as UTF-8) is at ``index`` in the tree of the
   checkpoint's size, by its RFC 9162 inclusion proof, whose result is the checkpoint's root;
3. the lines are the request's entries 1..n: each entry's hash recomputes from its body and
   prev_hash, and each prev_hash is the previous entry's hash (the first: the genesis hash).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from audit.chain import genesis_hash, is_hex64, recompute_hash
from audit.checkpoint import (
    Checkpoint,
    CheckpointConfig,
    CheckpointError,
    Source,
    latest_checkpoint,
    open_checkpoint,
)
from audit.checkpoint_store import OrderRecord, TreeStore, read_order
from audit.findings import Finding
from audit.merkle import ProofError, inclusion_proof, leaf_hash, verify_inclusion
from audit.note import ALG_COSIGNATURE_V1, NoteError, VerifierKey, verify_note

__all__ = ["BUNDLE_FORMAT", "BundleResult", "build_bundle", "verify_bundle"]

BUNDLE_FORMAT = "docket-audit-bundle/v1"
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_ENTRIES = 100_000
_READ = 8 * 1024 * 1024


def _find_lines(
    records: Sequence[OrderRecord],
    size: int,
    locate: Any,
    needle: bytes,
    request_id: str,
) -> list[tuple[int, bytes]]:
    """(leaf index, line) of every checkpointed line of the request (cheap byte prefilter)."""
    found: list[tuple[int, bytes]] = []
    for rec in records:
        if rec.first >= size:
            break
        path = locate(rec)
        with open(path, "rb") as f:
            f.seek(rec.start)
            index, remaining, pending = rec.first, rec.end - rec.start, b""
            while remaining > 0:
                chunk = f.read(min(_READ, remaining))
                if not chunk:
                    raise CheckpointError(f"{path} is shorter than its checkpointed range")
                remaining -= len(chunk)
                data = pending + chunk if pending else chunk
                cut = data.rfind(b"\n")
                if cut < 0:
                    pending = data
                    continue
                lines = data[:cut].split(b"\n")
                pending = data[cut + 1 :]
                if needle in data:
                    for i, line in enumerate(lines):
                        if needle in line and _chain_of(line) == request_id:
                            found.append((index + i, line))
                index += len(lines)
    return found


def _chain_of(line: bytes) -> str | None:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    d = value.get("docket") if isinstance(value, dict) else None
    cid = d.get("chain_id") if isinstance(d, dict) else None
    return cid if isinstance(cid, str) else None


def build_bundle(
    request_id: str,
    config: CheckpointConfig,
    key: VerifierKey,
    *,
    paths: Iterable[str | os.PathLike[str]] = (),
) -> dict[str, Any]:
    """The bundle for ``request_id`` against the latest checkpoint in ``config.state_dir``.

    Segments are found through the configured sources, or by file name under ``paths``.
    Raises CheckpointError when there is no checkpoint or the request has no checkpointed entry.
    """
    latest = latest_checkpoint(config, key)
    if latest is None:
        raise CheckpointError(f"no checkpoint in {config.state_dir}: run `audit checkpoint`")
    cp = latest.checkpoint
    records = read_order(config.order_path)
    by_label = {s.label: s for s in config.sources}
    by_name: dict[str, Path] = {}
    if paths:
        from audit.reader import find_segments

        by_name = {p.name: p for p in find_segments(paths)}

    def locate(rec: OrderRecord) -> Path:
        if by_name:
            p = by_name.get(rec.path.rsplit("/", 1)[-1])
            if p is None:
                raise CheckpointError(f"segment {rec.path} is not under the paths given")
            return p
        source: Source | None = by_label.get(rec.source)
        if source is None:
            raise CheckpointError(f"order.jsonl:{rec.line}: unknown source {rec.source!r}")
        return source.directory / rec.path

    needle = orjson.dumps(request_id)  # a cheap prefilter; every candidate line is parsed
    lines = _find_lines(records, cp.size, locate, needle, request_id)
    if not lines:
        raise CheckpointError(
            f"no checkpointed entry of {request_id!r} (checkpoint size {cp.size}); if it is "
            "new, run `audit checkpoint` first"
        )
    entries = []
    with TreeStore(config.tree_dir, create=False) as store:
        for index, line in lines:
            proof = inclusion_proof(store, index, cp.size)
            try:  # never hand out a proof that does not verify (damaged tree files)
                verify_inclusion(index, cp.size, leaf_hash(line), proof, cp.root)
            except ProofError:
                raise CheckpointError(
                    f"the tree files in {config.tree_dir} give a wrong proof for leaf {index}: "
                    "rebuild them with `python -m audit checkpoint --rebuild`"
                ) from None
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                raise CheckpointError(f"leaf {index} is not UTF-8: verify the log") from None
            entries.append(
                {
                    "index": index,
                    "line": text,
                    "proof": [base64.b64encode(h).decode() for h in proof],
                }
            )
    return {
        "format": BUNDLE_FORMAT,
        "request_id": request_id,
        "log_origin": cp.origin,
        "tree_size": cp.size,
        "checkpoint": latest.render(),
        "entries": entries,
    }


# -- verification ----------------------------------------------------------------------------


@dataclass(slots=True)
class BundleResult:
    request_id: str | None = None
    checkpoint: Checkpoint | None = None
    entries: int = 0
    head: tuple[int, str] | None = None  # (sequence, hash) of the last entry
    cosigners: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "summary": {
                "status": "OK" if self.ok else "FAILED",
                "request_id": self.request_id,
                "origin": cp.origin if cp else None,
                "tree_size": cp.size if cp else None,
                "entries": self.entries,
                "head": {"sequence": self.head[0], "hash": self.head[1]} if self.head else None,
                "cosigned_by": self.cosigners,
                "findings": len(self.findings),
                "findings_by_code": dict(Counter(f.code for f in self.findings)),
            },
            "findings": [f.to_dict() for f in self.findings],
        }


class BundleFormatError(ValueError):
    """The file is not a bundle (the message names the field)."""


def _field(obj: dict[str, Any], name: str, kind: type, where: str) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BundleFormatError(f"{where}.{name} must be a {kind.__name__}")
    return value


def verify_bundle(
    data: bytes,
    key: VerifierKey,
    *,
    witnesses: Sequence[VerifierKey] = (),
    min_cosignatures: int = 0,
) -> BundleResult:
    """Check a bundle offline. Raises BundleFormatError for a file that is not a bundle;
    everything else is a finding."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleFormatError(f"bundle is {len(data)} bytes; at most {MAX_BUNDLE_BYTES}")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BundleFormatError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != BUNDLE_FORMAT:
        raise BundleFormatError(f"not a {BUNDLE_FORMAT} bundle ($.format)")
    request_id = _field(doc, "request_id", str, "$")
    note_text = _field(doc, "checkpoint", str, "$")
    raw_entries = _field(doc, "entries", list, "$")
    if len(raw_entries) > MAX_ENTRIES:
        raise BundleFormatError(f"$.entries has more than {MAX_ENTRIES} entries")
    items: list[tuple[str, int, bytes, list[bytes]]] = []
    seen_index: set[int] = set()
    for n, item in enumerate(raw_entries):
        where = f"$.entries[{n}]"
        if not isinstance(item, dict):
            raise BundleFormatError(f"{where} must be an object")
        index = _field(item, "index", int, where)
        line = _field(item, "line", str, where)
        proof_b64 = _field(item, "proof", list, where)
        try:
            proof = [base64.b64decode(str(h), validate=True) for h in proof_b64]
        except (binascii.Error, ValueError):
            raise BundleFormatError(f"{where}.proof holds a value that is not base64") from None
        if index in seen_index:
            raise BundleFormatError(f"{where}.index {index} appears twice")
        seen_index.add(index)
        items.append((where, index, line.encode("utf-8"), proof))
    res = BundleResult(request_id=request_id)
    try:
        signed = open_checkpoint(note_text, key)
    except NoteError as exc:
        res.findings.append(
            Finding(
                "bad_checkpoint_signature",
                f"the bundle's checkpoint is not signed by {key.name}+{key.key_id.hex()} "
                f"({exc}): the bundle proves nothing",
                chain_id=request_id,
            )
        )
        return res
    cp = res.checkpoint = signed.checkpoint
    _check_cosignatures(res, signed.note, witnesses, min_cosignatures, request_id)
    parsed: list[tuple[int, dict[str, Any], int]] = []  # (sequence, entry, index)
    for where, index, raw, proof in items:
        try:
            verify_inclusion(index, cp.size, leaf_hash(raw), proof, cp.root)
        except ProofError as exc:
            res.findings.append(
                Finding(
                    "not_in_checkpoint",
                    f"{where}: this line is not leaf {index} of the checkpointed log ({exc}): "
                    "it was altered or never in the log",
                    chain_id=request_id,
                    found=leaf_hash(raw).hex(),
                    expected=f"leaf {index} of tree size {cp.size}",
                )
            )
            continue
        entry = _parse_entry(res, raw, where, request_id)
        if entry is not None:
            parsed.append((entry["event"]["sequence"], entry, index))
    _check_chain(res, parsed, request_id)
    return res


def _parse_entry(
    res: BundleResult, raw: bytes, where: str, request_id: str
) -> dict[str, Any] | None:
    try:
        entry = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        res.findings.append(Finding("invalid_entry", f"{where}: not JSON ({exc})", request_id))
        return None
    ev = entry.get("event") if isinstance(entry, dict) else None
    d = entry.get("docket") if isinstance(entry, dict) else None
    seq = ev.get("sequence") if isinstance(ev, dict) else None
    cid = d.get("chain_id") if isinstance(d, dict) else None
    if (
        type(seq) is not int
        or seq < 1
        or not is_hex64(entry.get("hash"))
        or not is_hex64(entry.get("prev_hash"))
    ):
        res.findings.append(
            Finding("invalid_entry", f"{where}: not a well-formed audit entry", request_id)
        )
        return None
    if cid != request_id:
        res.findings.append(
            Finding(
                "wrong_request",
                f"{where}: the entry belongs to {cid!r}, not to the bundle's request",
                request_id,
                seq,
                found=cid,
                expected=request_id,
            )
        )
        return None
    return entry  # type: ignore[no-any-return]


def _check_chain(
    res: BundleResult, parsed: list[tuple[int, dict[str, Any], int]], request_id: str
) -> None:
    parsed.sort(key=lambda t: (t[0], t[2]))
    expected_prev = genesis_hash(request_id)
    last = 0
    for seq, entry, index in parsed:
        try:
            recomputed = recompute_hash(entry)
        except (ValueError, TypeError) as exc:
            res.findings.append(Finding("invalid_entry", f"leaf {index}: {exc}", request_id, seq))
            continue
        if seq == last and entry["hash"] == expected_prev:
            continue  # an identical duplicate (a retried write), in the log twice
        if recomputed != entry["hash"]:
            res.findings.append(
                Finding(
                    "hash_mismatch",
                    f"leaf {index}: the entry's hash does not match its body",
                    request_id,
                    seq,
                    found=entry["hash"],
                    expected=recomputed,
                )
            )
        if seq != last + 1:
            res.findings.append(
                Finding(
                    "gap",
                    f"sequence {last + 1}..{seq - 1} missing from the bundle",
                    request_id,
                    seq,
                    found=seq,
                    expected=last + 1,
                )
            )
        elif entry["prev_hash"] != expected_prev:
            res.findings.append(
                Finding(
                    "chain_break",
                    f"leaf {index}: prev_hash does not link to the previous entry",
                    request_id,
                    seq,
                    found=entry["prev_hash"],
                    expected=expected_prev,
                )
            )
        expected_prev = entry["hash"]
        last = seq
        res.entries += 1
        res.head = (seq, entry["hash"])
    if not parsed and not res.findings:
        res.findings.append(Finding("missing_entry", "the bundle holds no entry", request_id))


def _check_cosignatures(
    res: BundleResult,
    note: Any,
    witnesses: Sequence[VerifierKey],
    min_cosignatures: int,
    request_id: str,
) -> None:
    for w in witnesses:
        if w.alg != ALG_COSIGNATURE_V1:
            raise BundleFormatError(f"witness key {w.name} is not a cosignature/v1 key (0x04)")
        try:
            verify_note(note, [w])
        except NoteError:
            continue
        res.cosigners.append(w.name)
    if len(res.cosigners) < min_cosignatures:
        res.findings.append(
            Finding(
                "missing_cosignature",
                f"the checkpoint is cosigned by {len(res.cosigners)} of the witnesses given, "
                f"{min_cosignatures} required: it may be a view shown only to you (a fork)",
                request_id,
                found=len(res.cosigners),
                expected=min_cosignatures,
            )
        )
