"""The witness: cosigns consistent checkpoints, refuses forks and rewinds, keeps its state."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import chain_entries, write_log

from audit.checkpoint import (
    CheckpointConfig,
    Source,
    add_checkpoint_request,
    make_checkpoint,
)
from audit.cli import main
from audit.note import ALG_COSIGNATURE_V1, generate_key, parse_note, verify_note
from audit.witness import Witness, WitnessRefusal, parse_add_checkpoint
from audit.writer import AuditWriter


class Log:
    def __init__(self, root: Path, key: Any) -> None:
        self.audit = root / "audit"
        self.config = CheckpointConfig(root / "ck", (Source("local", self.audit),))
        self.key = key

    def grow(self, chain: str, n: int) -> str:
        write_log(self.audit, {chain: n}, host="h")
        make_checkpoint(self.config, self.key)
        return self.config.checkpoint_path.read_text()

    def request(self, old: int) -> Any:
        return parse_add_checkpoint(add_checkpoint_request(self.config, self.key.verifier(), old))


@pytest.fixture
def key() -> Any:
    return generate_key("docket.test/audit")


@pytest.fixture
def witness(tmp_path: Path, key: Any) -> Witness:
    wkey = generate_key("witness.test/w1", ALG_COSIGNATURE_V1)
    return Witness(wkey, tmp_path / "witness", [key.verifier()])


def test_cosigns_a_growing_log_and_keeps_its_state(
    tmp_path: Path, key: Any, witness: Witness
) -> None:
    log = Log(tmp_path / "log", key)
    log.grow("req-mst-1", 5)
    line = witness.add_checkpoint(log.request(0), now=1_800_000_000)
    note = parse_note(log.config.checkpoint_path.read_text() + line)
    [ok] = verify_note(note, [witness.key.verifier()])
    assert ok.timestamp == 1_800_000_000
    log.grow("req-mst-2", 4)
    witness.add_checkpoint(log.request(5), now=1_800_000_100)
    latest = witness.latest("docket.test/audit")
    assert latest is not None and latest.checkpoint.size == 9
    # a new Witness object (a restart) knows where it stands
    again = Witness(witness.key, witness.state_dir, [key.verifier()])
    with pytest.raises(WitnessRefusal) as refused:
        again.add_checkpoint(log.request(5))
    assert refused.value.code == "old_size_mismatch" and refused.value.witness_size == 9


def test_a_rewind_is_refused(tmp_path: Path, key: Any, witness: Witness) -> None:
    log = Log(tmp_path / "log", key)
    old_note = log.grow("req-mst-1", 5)
    witness.add_checkpoint(log.request(0))
    log.grow("req-mst-2", 4)
    witness.add_checkpoint(log.request(5))
    before = (witness.state_dir).iterdir()
    with pytest.raises(WitnessRefusal) as refused:
        witness.add_checkpoint(parse_add_checkpoint("old 9\n\n" + old_note))
    assert refused.value.code == "rewind"
    latest = witness.latest("docket.test/audit")
    assert latest is not None and latest.checkpoint.size == 9
    assert before  # state untouched


def test_a_fork_is_refused(tmp_path: Path, key: Any, witness: Witness) -> None:
    """The operator rewrites an early entry, rebuilds the log with the same key and signs a
    bigger checkpoint: no consistency proof from what the witness saw can exist."""
    log = Log(tmp_path / "log", key)
    log.grow("req-mst-1", 6)
    witness.add_checkpoint(log.request(0))
    fork = Log(tmp_path / "fork", key)
    entries = chain_entries("req-mst-1", 6)
    entries[2]["user"]["id"] = "le.van.cuong"  # the forged approver (hash recomputed below)
    from audit.chain import recompute_hash

    prev = entries[1]["hash"]
    for e in entries[2:]:
        e["prev_hash"] = prev
        e["hash"] = prev = recompute_hash(e)
    writer = AuditWriter(fork.audit, host="h")
    writer.append(entries, attempt=1)
    writer.close()
    write_log(fork.audit, {"req-mst-2": 3}, host="h2")
    make_checkpoint(fork.config, key)
    with pytest.raises(WitnessRefusal) as refused:
        witness.add_checkpoint(fork.request(6))
    assert refused.value.code == "fork"
    # same size, another root: also a fork
    same = Log(tmp_path / "same", key)
    writer = AuditWriter(same.audit, host="h")
    writer.append(entries, attempt=1)
    writer.close()
    make_checkpoint(same.config, key)
    with pytest.raises(WitnessRefusal) as refused:
        witness.add_checkpoint(same.request(6))
    assert refused.value.code == "fork"


def test_bad_signatures_and_unknown_logs_are_refused(
    tmp_path: Path, key: Any, witness: Witness
) -> None:
    log = Log(tmp_path / "log", key)
    note = log.grow("req-mst-1", 3)
    with pytest.raises(WitnessRefusal) as refused:
        witness.add_checkpoint(parse_add_checkpoint("old 0\n\n" + note.replace("\n3\n", "\n4\n")))
    assert refused.value.code == "bad_checkpoint_signature"
    stranger = Log(tmp_path / "stranger", generate_key("other.test/log"))
    with pytest.raises(WitnessRefusal) as refused:
        witness.add_checkpoint(parse_add_checkpoint("old 0\n\n" + stranger.grow("r-1", 2)))
    assert refused.value.code == "unknown_log"
    for body, code in [("nonsense", "bad_request"), ("old 01\n\n" + note, "bad_request")]:
        with pytest.raises(WitnessRefusal) as refused:
            witness.add_checkpoint(parse_add_checkpoint(body))
        assert refused.value.code == code


def test_witness_command(tmp_path: Path, key: Any, capsys: pytest.CaptureFixture[str]) -> None:
    log = Log(tmp_path / "log", key)
    log.grow("req-mst-1", 4)
    wkey = generate_key("witness.test/w1", ALG_COSIGNATURE_V1)
    kf = tmp_path / "w.key"
    kf.write_text(wkey.encode())
    os.chmod(kf, 0o600)
    args = ["witness", "--key", str(kf), "--log-key", key.verifier().vkey()]
    args += ["--state", str(tmp_path / "ws")]
    assert main([*args, "--log-dir", str(log.config.state_dir)]) == 0
    out = capsys.readouterr().out
    verify_note(parse_note(out), [wkey.verifier()])
    log.grow("req-mst-2", 2)
    assert main([*args, "--log-dir", str(log.config.state_dir)]) == 0
    capsys.readouterr()
    # the log is rewound to an older state: the witness refuses (exit 1) and says why
    shutil.copy(log.config.state_dir / "checkpoints" / f"{4:012d}", log.config.checkpoint_path)
    assert main([*args, "--log-dir", str(log.config.state_dir)]) == 1
    assert "REFUSED (rewind)" in capsys.readouterr().err
    assert main([*args, "--request", str(tmp_path / "missing")]) == 2
