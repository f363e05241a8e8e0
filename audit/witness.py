"""A witness for Docket's log: checks each new checkpoint against the last one it cosigned and
countersigns it (C2SP tlog-witness add-checkpoint semantics, tlog-cosignature cosignature/v1).

The witness keeps its own state (one file per log origin: the last checkpoint it cosigned) and
its own Ed25519 key (signature type 0x04). It refuses, and keeps its state, when

* the checkpoint is not signed by the log key it trusts (``bad_checkpoint_signature``);
* the request's old size is not the size it last cosigned (``old_size_mismatch``, "409");
* the tree got smaller (``rewind``), or a consistency proof from its last checkpoint to the new
  one does not verify, or the same size has another root (``fork``).

So a log operator who rewrites history, or shows different logs to different people, cannot
get a cosignature for the rewritten or forked view from a witness that saw the original.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from audit.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint, write_atomic
from audit.merkle import ProofError, verify_consistency
from audit.note import (
    ALG_COSIGNATURE_V1,
    NoteError,
    NoteSignature,
    SignerKey,
    VerifierKey,
    parse_note,
)

__all__ = ["AddCheckpoint", "Witness", "WitnessRefusal", "parse_add_checkpoint"]

MAX_PROOF_LINES = 63


class WitnessRefusal(Exception):
    """The witness will not cosign; ``code`` says why (state unchanged)."""

    def __init__(self, code: str, message: str, *, witness_size: int | None = None) -> None:
        self.code = code
        self.witness_size = witness_size
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: str  # the signed note, as submitted


def parse_add_checkpoint(body: bytes | str) -> AddCheckpoint:
    """The C2SP tlog-witness add-checkpoint body: ``old N``, proof lines, blank line, note."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise WitnessRefusal("bad_request", "request has no blank line before the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    if not first.startswith("old ") or not first[4:].isdigit():
        raise WitnessRefusal("bad_request", f"first line must be 'old <size>', got {first!r}")
    size_text = first[4:]
    if size_text != "0" and size_text.startswith("0"):
        raise WitnessRefusal("bad_request", "old size has leading zeros")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessRefusal("bad_request", f"more than {MAX_PROOF_LINES} proof lines")
    proof = []
    for n, line in enumerate(lines[1:], 2):
        try:
            h = base64.b64decode(line.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise WitnessRefusal("bad_request", f"line {n} is not a base64 hash") from None
        if len(h) != 32:
            raise WitnessRefusal("bad_request", f"line {n} is not a 32-byte hash")
        proof.append(h)
    return AddCheckpoint(int(size_text), tuple(proof), note)


class Witness:
    def __init__(
        self, key: SignerKey, state_dir: str | os.PathLike[str], logs: Sequence[VerifierKey]
    ) -> None:
        if key.alg != ALG_COSIGNATURE_V1:
            raise NoteError(f"witness key {key.name} must be a cosignature/v1 key (type 0x04)")
        self.key = key
        self.state_dir = Path(state_dir)
        self.logs = {k.name: k for k in logs}

    def _state_file(self, origin: str) -> Path:
        return self.state_dir / (hashlib.sha256(origin.encode()).hexdigest()[:32] + ".checkpoint")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.state_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def latest(self, origin: str) -> SignedCheckpoint | None:
        """The last checkpoint this witness cosigned for ``origin``."""
        path = self._state_file(origin)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return open_checkpoint(data, self.logs[origin])

    def add_checkpoint(self, request: AddCheckpoint, *, now: float | None = None) -> str:
        """Check and cosign; returns the cosignature line(s). Raises WitnessRefusal."""
        try:
            note = parse_note(request.checkpoint)
            origin = note.text.split("\n", 1)[0]
        except NoteError as exc:
            raise WitnessRefusal("bad_request", f"not a signed checkpoint: {exc}") from None
        log_key = self.logs.get(origin)
        if log_key is None:
            raise WitnessRefusal("unknown_log", f"this witness does not follow {origin!r}")
        try:
            signed = open_checkpoint(request.checkpoint, log_key)
        except NoteError as exc:
            raise WitnessRefusal("bad_checkpoint_signature", str(exc)) from None
        new = signed.checkpoint
        if new.size == 0 and new.root != hashlib.sha256(b"").digest():
            raise WitnessRefusal("fork", "a checkpoint of size 0 must have the empty root")
        with self._locked():
            last = self.latest(origin)
            have = last.checkpoint if last is not None else None
            have_size = have.size if have is not None else 0
            if have is not None and new.size < have.size:
                raise WitnessRefusal(
                    "rewind",
                    f"the log went back from size {have.size} to {new.size}: it was rewound "
                    "(entries removed); not cosigning",
                    witness_size=have.size,
                )
            if request.old_size > new.size:
                raise WitnessRefusal("bad_request", f"old size {request.old_size} > {new.size}")
            if request.old_size != have_size:
                raise WitnessRefusal(
                    "old_size_mismatch",
                    f"this witness last cosigned size {have_size}, the request proves from "
                    f"{request.old_size}; ask the log for a proof from {have_size} "
                    f"(python -m audit checkpoint --request-from {have_size})",
                    witness_size=have_size,
                )
            if have is not None:
                self._check_consistent(have, new, request.proof)
            elif request.proof:
                raise WitnessRefusal("bad_request", "a proof from size 0 must be empty")
            timestamp = int(now if now is not None else time.time())
            if have is not None and last is not None:
                timestamp = max(timestamp, _last_timestamp(last, self.key) + 1)
            cosig: NoteSignature = self.key.sign(signed.note.text, timestamp=timestamp)
            cosigned = signed.note.with_signatures([cosig])
            write_atomic(self._state_file(origin), cosigned.render().encode())
        return cosig.line()

    def _check_consistent(self, have: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
        try:
            verify_consistency(have.size, new.size, have.root, new.root, proof)
        except ProofError as exc:
            raise WitnessRefusal(
                "fork",
                f"the checkpoint of size {new.size} is not an extension of the one of size "
                f"{have.size} this witness cosigned ({exc}): the log forked or rewrote history",
                witness_size=have.size,
            ) from None


def _last_timestamp(last: SignedCheckpoint, key: SignerKey) -> int:
    verifier = key.verifier()
    for sig in last.note.signatures:
        if verifier.matches(sig) and len(sig.signature) >= 8:
            return int.from_bytes(sig.signature[:8], "big")
    return 0
