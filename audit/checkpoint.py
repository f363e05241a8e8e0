"""Signed checkpoints of the whole audit log (C2SP tlog-checkpoint over an RFC 6962 tree).

The checkpointer reads every configured source directory (one per worker host, or a shared
one), takes the new *complete* lines of each segment since its last run (a torn tail is never
taken: it was never acknowledged), appends their leaf hashes to the on-disk tree and the byte
ranges it took to the order index (``audit.checkpoint_store``), then signs

    <origin>\\n<tree size>\\n<base64 root hash>\\n

with the deployment's Ed25519 log key as a C2SP signed note, after checking that the new tree
is consistent with the last signed checkpoint (RFC 9162 consistency proof). It refuses to sign
otherwise. Cost grows with the new entries only.

State directory (``$DOCKET_CHECKPOINT_DIR``, default ``var/checkpoints``)::

    checkpoint              the latest signed checkpoint
    checkpoints/<size>      every signed checkpoint, by tree size
    order.jsonl             the recorded global order (which lines of which segment)
    tree/level-NN.bin       the tree's nodes
    lock                    one checkpointer at a time
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from audit.checkpoint_store import (
    OrderError,
    OrderRecord,
    StoreError,
    TreeStore,
    append_order,
    read_order,
)
from audit.merkle import (
    HASH_SIZE,
    ProofError,
    consistency_proof,
    tree_root,
    verify_consistency,
)
from audit.note import (
    ALG_ED25519,
    Note,
    NoteError,
    SignerKey,
    VerifierKey,
    load_signer,
    parse_note,
    verify_note,
)

__all__ = [
    "Checkpoint",
    "CheckpointConfig",
    "CheckpointError",
    "CheckpointRefused",
    "CheckpointResult",
    "ConfigError",
    "SignedCheckpoint",
    "Source",
    "add_checkpoint_request",
    "make_checkpoint",
    "open_checkpoint",
]

READ_CHUNK = 8 * 1024 * 1024
LEAF_BATCH = 65536
ENV_KEY = "DOCKET_LOG_KEY"
ENV_STATE = "DOCKET_CHECKPOINT_DIR"
ENV_SOURCES = "DOCKET_CHECKPOINT_SOURCES"


class CheckpointError(Exception):
    """The checkpointer cannot run (bad state, unreadable files); the message says what to do."""


class CheckpointRefused(CheckpointError):
    """Signing would contradict an earlier signed checkpoint: the state or the log was changed."""


class ConfigError(CheckpointError):
    """Bad checkpointer configuration (environment variable or argument named)."""


# -- the checkpoint format -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @classmethod
    def parse_text(cls, text: str) -> Checkpoint:
        """The body of a checkpoint note (c2sp.org/tlog-checkpoint); raises NoteError."""
        if not text.endswith("\n"):
            raise NoteError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("a checkpoint has an origin, a tree size and a root hash line")
        origin, size_text, root_text, *ext = lines
        if not origin:
            raise NoteError("checkpoint origin line is empty")
        if (
            not size_text.isascii()
            or not size_text.isdigit()
            or (size_text != "0" and size_text.startswith("0"))
        ):
            raise NoteError(f"checkpoint tree size {size_text[:30]!r} is not a decimal number")
        size = int(size_text)
        if size >= 1 << 63:
            raise NoteError("checkpoint tree size is too large")
        try:
            root = base64.b64decode(root_text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise NoteError("checkpoint root hash is not base64") from None
        if len(root) != HASH_SIZE:
            raise NoteError(f"checkpoint root hash is {len(root)} bytes, not {HASH_SIZE}")
        if any(not line for line in ext):
            raise NoteError("checkpoint extension lines must not be empty")
        return cls(origin, size, root, tuple(ext))


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: Note

    def render(self) -> str:
        return self.note.render()


def open_checkpoint(data: bytes | str, key: VerifierKey) -> SignedCheckpoint:
    """Parse a checkpoint and verify the log's signature on it (raises NoteError)."""
    note = parse_note(data)
    if key.alg != ALG_ED25519:
        raise NoteError(f"{key.name}: a log key has signature type 0x01 (Ed25519)")
    verify_note(note, [key])
    checkpoint = Checkpoint.parse_text(note.text)
    if checkpoint.origin != key.name:
        raise NoteError(
            f"checkpoint origin {checkpoint.origin!r} is not the log key's name {key.name!r}"
        )
    return SignedCheckpoint(checkpoint, note)


def sign_checkpoint(checkpoint: Checkpoint, key: SignerKey) -> SignedCheckpoint:
    text = checkpoint.text()
    return SignedCheckpoint(checkpoint, Note(text, (key.sign(text),)))


# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """A directory of audit segments (one worker host's, or a shared one) under a fixed label.

    The label is recorded in the order index: never rename it once checkpoints exist."""

    label: str
    directory: Path


def parse_sources(spec: str, *, where: str = ENV_SOURCES) -> tuple[Source, ...]:
    """``LABEL=DIR,LABEL=DIR`` (a bare ``DIR`` is labelled with its directory name)."""
    sources: list[Source] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        label, sep, directory = part.partition("=")
        if not sep:
            directory, label = label, Path(label).name
        if not label or "/" in label or not directory:
            raise ConfigError(f"{where}: {part!r} is not LABEL=DIRECTORY")
        sources.append(Source(label, Path(directory)))
    if not sources:
        raise ConfigError(f"{where}: no source directory given")
    labels = [s.label for s in sources]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{where}: source labels must be unique, got {', '.join(labels)}")
    return tuple(sources)


@dataclass(frozen=True, slots=True)
class CheckpointConfig:
    state_dir: Path
    sources: tuple[Source, ...]

    def __post_init__(self) -> None:
        state = self.state_dir.resolve()
        for s in self.sources:
            src = s.directory.resolve()
            if state == src or state.is_relative_to(src) or src.is_relative_to(state):
                raise ConfigError(
                    f"the checkpoint directory {self.state_dir} and the source {s.label}="
                    f"{s.directory} must not contain each other (its order.jsonl would be read "
                    "as a segment)"
                )

    @property
    def checkpoint_path(self) -> Path:
        return self.state_dir / "checkpoint"

    @property
    def order_path(self) -> Path:
        return self.state_dir / "order.jsonl"

    @property
    def tree_dir(self) -> Path:
        return self.state_dir / "tree"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CheckpointConfig:
        env = os.environ if environ is None else environ
        state = Path(env.get(ENV_STATE) or os.path.join("var", "checkpoints"))
        spec = env.get(ENV_SOURCES)
        if spec:
            sources = parse_sources(spec)
        else:
            audit_dir = env.get("DOCKET_AUDIT_DIR") or os.path.join("var", "audit")
            sources = (Source("local", Path(audit_dir)),)
        return cls(state, sources)


def signer_from_env(environ: Mapping[str, str] | None = None) -> SignerKey:
    """The log key from the file named by $DOCKET_LOG_KEY (raises ConfigError)."""
    env = os.environ if environ is None else environ
    path = env.get(ENV_KEY)
    if not path:
        raise ConfigError(
            f"{ENV_KEY} is not set: point it at the log's private key file (create one with "
            "`python -m audit keygen <origin> --out <file>`)"
        )
    try:
        return load_signer(path, alg=ALG_ED25519)
    except NoteError as exc:
        raise ConfigError(f"{ENV_KEY}: {exc}") from None


# -- making a checkpoint ---------------------------------------------------------------------


@dataclass(slots=True)
class CheckpointResult:
    origin: str
    size: int
    root: bytes
    previous_size: int | None
    new_entries: int
    signed: bool  # False when nothing was new (the latest checkpoint still stands)
    checkpoint_path: str
    segments_read: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CheckpointError(
                f"another checkpointer holds {state_dir / 'lock'}; try again when it is done"
            ) from None
        yield
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def latest_checkpoint(config: CheckpointConfig, key: VerifierKey) -> SignedCheckpoint | None:
    path = config.checkpoint_path
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return open_checkpoint(data, key)
    except NoteError as exc:
        raise CheckpointRefused(
            f"the last checkpoint {path} does not verify with the log key {key.name}+"
            f"{key.key_id.hex()} ({exc}); if the key was rotated on purpose, move the state "
            "directory aside and start a new log"
        ) from None


def _segments(source: Source, problems: list[str]) -> list[tuple[str, Path]]:
    """(relative path, path) of every *.jsonl under the source, sorted; problems reported."""
    found: list[tuple[str, Path]] = []
    if not source.directory.is_dir():
        problems.append(f"source {source.label}: {source.directory} is not a readable directory")
        return found

    def onerror(exc: OSError) -> None:
        problems.append(f"source {source.label}: cannot read {exc.filename}: {exc.strerror}")

    for dirpath, dirnames, filenames in os.walk(source.directory, onerror=onerror):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".jsonl"):
                path = Path(dirpath) / name
                found.append((path.relative_to(source.directory).as_posix(), path))
    return found


class _Reader:
    """Takes new complete lines into the tree in bounded batches."""

    def __init__(self, store: TreeStore, first: int) -> None:
        self.store = store
        self.next_leaf = first
        self.batch: list[bytes] = []

    def take(self, path: Path, start: int) -> tuple[int, int]:
        """Leaf-hash the complete lines from ``start``; returns (lines taken, end offset)."""
        taken, end, pending = 0, start, b""
        with open(path, "rb") as f:
            f.seek(start)
            while chunk := f.read(READ_CHUNK):
                data = pending + chunk if pending else chunk
                cut = data.rfind(b"\n")
                if cut < 0:
                    pending = data
                    continue
                lines = data[:cut].split(b"\n")
                self.batch.extend(_leaf_hashes(lines))
                taken += len(lines)
                end += cut + 1
                pending = data[cut + 1 :]
                if len(self.batch) >= LEAF_BATCH:
                    self.flush()
        self.next_leaf += taken
        return taken, end

    def flush(self) -> None:
        if self.batch:
            self.store.append(self.batch)
            self.batch = []


def _leaf_hashes(lines: Sequence[bytes]) -> list[bytes]:
    import hashlib

    sha = hashlib.sha256
    return [sha(b"\x00" + line).digest() for line in lines]


def make_checkpoint(config: CheckpointConfig, key: SignerKey) -> CheckpointResult:
    """Take every new complete line into the tree and sign a checkpoint consistent with the last.

    Raises CheckpointRefused (never signs) if the stored tree no longer matches the last signed
    checkpoint, CheckpointError for unusable state. Problems that do not stop the run (an
    unreadable source, a segment that shrank) are in ``result.problems``.
    """
    started = time.monotonic()
    verifier = key.verifier()
    with _locked(config.state_dir):
        try:
            records = read_order(config.order_path, repair_torn=True)
        except OrderError as exc:
            raise CheckpointError(f"order index unusable: {exc}") from None
        committed = sum(r.count for r in records)
        previous = latest_checkpoint(config, verifier)
        if previous is not None and previous.checkpoint.size > committed:
            raise CheckpointRefused(
                f"the order index records {committed} entries but the last checkpoint signed "
                f"{previous.checkpoint.size}: {config.order_path} was truncated or replaced"
            )
        with TreeStore(config.tree_dir) as store:
            if store.size > committed:
                store.truncate(committed)  # a run that crashed before its records committed
            elif store.size < committed:
                raise CheckpointError(
                    f"{config.tree_dir} holds {store.size} leaves but the order index "
                    f"{committed}: the tree files were damaged; rebuild them with "
                    "`python -m audit checkpoint --rebuild`"
                )
            if previous is not None:
                _check_previous(store, previous.checkpoint)
            result = _take_new_lines(config, store, records, committed, key, previous)
    result.seconds = time.monotonic() - started
    return result


def _check_previous(store: TreeStore, previous: Checkpoint) -> None:
    try:
        root = tree_root(store, previous.size)
    except StoreError as exc:
        raise CheckpointRefused(f"cannot recompute the last checkpoint's root: {exc}") from None
    if root != previous.root:
        raise CheckpointRefused(
            f"the stored tree's root at size {previous.size} is {root.hex()} but the last "
            f"signed checkpoint says {previous.root.hex()}: the checkpointer's files were "
            "changed; refusing to sign a checkpoint that is not consistent with it"
        )


def _take_new_lines(
    config: CheckpointConfig,
    store: TreeStore,
    records: list[OrderRecord],
    committed: int,
    key: SignerKey,
    previous: SignedCheckpoint | None,
) -> CheckpointResult:
    offsets: dict[tuple[str, str], int] = {}
    for r in records:
        offsets[(r.source, r.path)] = r.end
    problems: list[str] = []
    reader = _Reader(store, committed)
    new_records: list[OrderRecord] = []
    segments_read = 0
    for source in config.sources:
        for rel, path in _segments(source, problems):
            start = offsets.get((source.label, rel), 0)
            try:
                size = path.stat().st_size
                if size < start:
                    problems.append(
                        f"{source.label}/{rel}: {size} bytes, shorter than the {start} already "
                        "checkpointed: the segment was truncated (audit verify --checkpoint "
                        "reports the missing entries)"
                    )
                    continue
                if size == start:
                    continue
                if start and _byte_before(path, start) != b"\n":
                    problems.append(
                        f"{source.label}/{rel}: byte {start - 1} is no longer a line end: the "
                        "segment was rewritten; its new bytes are not taken"
                    )
                    continue
                first = reader.next_leaf
                taken, end = reader.take(path, start)
            except OSError as exc:
                problems.append(f"{source.label}/{rel}: cannot read: {exc}")
                continue
            segments_read += 1
            if taken:
                new_records.append(OrderRecord(first, taken, source.label, rel, start, end))
    reader.flush()
    store.sync()
    append_order(config.order_path, new_records)
    size = reader.next_leaf
    root = tree_root(store, size)
    old = previous.checkpoint if previous is not None else None
    if old is not None and old.size == size:
        return CheckpointResult(
            key.name,
            size,
            root,
            old.size,
            0,
            False,
            str(config.checkpoint_path),
            segments_read,
            problems,
        )
    if old is not None:
        proof = consistency_proof(store, old.size, size)
        try:
            verify_consistency(old.size, size, old.root, root, proof)
        except ProofError as exc:  # cannot happen unless the store changed under us
            raise CheckpointRefused(f"new tree is not consistent with the last: {exc}") from None
    signed = sign_checkpoint(Checkpoint(key.name, size, root), key)
    data = signed.render().encode()
    history = config.state_dir / "checkpoints"
    history.mkdir(exist_ok=True)
    write_atomic(history / f"{size:012d}", data)
    write_atomic(config.checkpoint_path, data)
    return CheckpointResult(
        key.name,
        size,
        root,
        old.size if old is not None else None,
        size - committed,
        True,
        str(config.checkpoint_path),
        segments_read,
        problems,
    )


def _byte_before(path: Path, offset: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset - 1)
        return f.read(1)


def rebuild_tree(config: CheckpointConfig, key: VerifierKey) -> int:
    """Recompute the tree files from the order index and the segments (after damage).

    Checks the rebuilt tree against the latest checkpoint; returns the number of leaves."""
    with _locked(config.state_dir):
        records = read_order(config.order_path, repair_torn=True)
        by_label = {s.label: s for s in config.sources}
        tmp = config.state_dir / "tree.rebuild"
        if tmp.exists():
            for f in tmp.iterdir():
                f.unlink()
        with TreeStore(tmp) as store:
            reader = _Reader(store, 0)
            for r in records:
                source = by_label.get(r.source)
                if source is None:
                    raise CheckpointError(f"order.jsonl:{r.line}: unknown source {r.source!r}")
                path = source.directory / r.path
                taken, end = _take_range(reader, path, r)
                if taken != r.count or end != r.end:
                    raise CheckpointError(
                        f"{path}: bytes {r.start}..{r.end} no longer hold the {r.count} lines "
                        f"recorded at order.jsonl:{r.line}; run `audit verify --checkpoint`"
                    )
            reader.flush()
            store.sync()
            previous = latest_checkpoint(config, key)
            if previous is not None:
                _check_previous(store, previous.checkpoint)
        old = config.tree_dir
        if old.exists():
            for f in old.iterdir():
                f.unlink()
            old.rmdir()
        tmp.rename(old)
        return reader.next_leaf


def _take_range(reader: _Reader, path: Path, r: OrderRecord) -> tuple[int, int]:
    with open(path, "rb") as f:
        f.seek(r.start)
        data = f.read(r.end - r.start)
    if not data.endswith(b"\n"):
        return 0, r.start + len(data)
    lines = data[:-1].split(b"\n")
    reader.batch.extend(_leaf_hashes(lines))
    reader.next_leaf += len(lines)
    if len(reader.batch) >= LEAF_BATCH:
        reader.flush()
    return len(lines), r.start + len(data)


def add_checkpoint_request(config: CheckpointConfig, key: VerifierKey, old_size: int) -> str:
    """The C2SP tlog-witness add-checkpoint body for the latest checkpoint from ``old_size``."""
    latest = latest_checkpoint(config, key)
    if latest is None:
        raise CheckpointError(f"no checkpoint in {config.state_dir} yet")
    size = latest.checkpoint.size
    if not 0 <= old_size <= size:
        raise CheckpointError(f"old size {old_size} is not between 0 and {size}")
    with TreeStore(config.tree_dir, create=False) as store:
        proof = consistency_proof(store, old_size, size)
    lines = [f"old {old_size}", *(base64.b64encode(h).decode() for h in proof)]
    return "\n".join(lines) + "\n\n" + latest.render()
