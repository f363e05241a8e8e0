"""The checkpointer (audit.checkpoint) and `audit verify --checkpoint` (completeness).

Two "worker hosts" write with real AuditWriters into separate audit directories; the
checkpointer is configured with both. Every completeness finding of issue 13 (a fabricated
chain, a deleted chain, a rewritten suffix, a truncated log) is shown with nothing but the
checkpoint, the public key and the recorded order.
"""

from __future__ import annotations

import base64
import itertools
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import chain_entries, write_log

from audit.checkpoint import (
    Checkpoint,
    CheckpointConfig,
    CheckpointError,
    CheckpointRefused,
    ConfigError,
    Source,
    add_checkpoint_request,
    make_checkpoint,
    open_checkpoint,
    parse_sources,
    rebuild_tree,
    signer_from_env,
)
from audit.checkpoint_store import TreeStore, read_order
from audit.checkpoint_verify import verify_completeness
from audit.cli import main
from audit.entry import ChainHead, build_entry
from audit.merkle import MemoryTree, consistency_proof, verify_consistency
from audit.note import NoteError, SignerKey, generate_key
from audit.verify import verify_paths
from audit.writer import AuditWriter, render_line


@dataclass
class Log:
    a: Path
    b: Path
    config: CheckpointConfig
    key: SignerKey
    chains: dict[str, list[dict[str, Any]]]

    @property
    def vkey(self) -> str:
        return self.key.verifier().vkey()

    def verify(self, **kw: Any) -> Any:
        return verify_completeness(
            [self.a, self.b], self.config.checkpoint_path, self.key.verifier(), **kw
        )

    def segment(self, d: Path) -> Path:
        [seg] = sorted(d.glob("*.jsonl"))
        return seg


@pytest.fixture
def log(tmp_path: Path) -> Log:
    a, b = tmp_path / "host-a" / "audit", tmp_path / "host-b" / "audit"
    _, ca = write_log(a, {"req-mst-a1": 10, "req-mst-a2": 6}, host="host-a")
    _, cb = write_log(b, {"req-mst-b1": 7, "req-mst-b2": 4}, host="host-b")
    config = CheckpointConfig(tmp_path / "checkpoints", (Source("host-a", a), Source("host-b", b)))
    key = generate_key("docket.test/audit")
    result = make_checkpoint(config, key)
    assert result.signed and result.size == 27
    return Log(a, b, config, key, {**ca, **cb})


def _codes(result: Any) -> list[str]:
    return [f.code for f in result.findings]


def _lines_in_order(config: CheckpointConfig, size: int) -> list[bytes]:
    labels = {s.label: s.directory for s in config.sources}
    out: list[bytes] = []
    for r in read_order(config.order_path):
        data = (labels[r.source] / r.path).read_bytes()[r.start : r.end]
        out += data[:-1].split(b"\n")
    return out[:size]


# -- making checkpoints ------------------------------------------------------------------------


def test_checkpoint_covers_both_hosts_in_the_recorded_order(log: Log) -> None:
    signed = open_checkpoint(log.config.checkpoint_path.read_bytes(), log.key.verifier())
    cp = signed.checkpoint
    assert (cp.origin, cp.size) == ("docket.test/audit", 27)
    lines = _lines_in_order(log.config, 27)
    assert MemoryTree(lines).root() == cp.root
    records = read_order(log.config.order_path)
    assert {r.source for r in records} == {"host-a", "host-b"}
    # every line of both segments is a leaf, exactly once
    all_lines = sorted(
        line for d in (log.a, log.b) for line in log.segment(d).read_bytes().splitlines()
    )
    assert sorted(lines) == all_lines
    text = log.config.checkpoint_path.read_text()
    body = f"docket.test/audit\n27\n{base64.b64encode(cp.root).decode()}\n\n— docket.test/audit "
    assert text.startswith(body)


def test_incremental_checkpoints_are_consistent_and_skip_torn_tails(log: Log) -> None:
    first = open_checkpoint(log.config.checkpoint_path.read_bytes(), log.key.verifier())
    # host-a's worker restarted (a new segment); host-b's crashed mid-write (torn tail)
    write_log(log.a, {"req-mst-a3": 5}, host="host-a")
    with open(log.segment(log.b), "ab") as f:
        f.write(render_line(chain_entries("req-mst-b9", 1)[0])[:-20])
    result = make_checkpoint(log.config, log.key)
    assert (result.previous_size, result.size, result.new_entries) == (27, 32, 5)
    second = open_checkpoint(log.config.checkpoint_path.read_bytes(), log.key.verifier())
    with TreeStore(log.config.tree_dir) as store:
        proof = consistency_proof(store, 27, 32)
    verify_consistency(27, 32, first.checkpoint.root, second.checkpoint.root, proof)
    assert sorted(p.name for p in (log.config.state_dir / "checkpoints").iterdir()) == [
        f"{27:012d}",
        f"{32:012d}",
    ]
    again = make_checkpoint(log.config, log.key)
    assert not again.signed and again.new_entries == 0 and again.size == 32
    # the torn tail is never taken; verify reports it (and only it) as such
    verdict = verify_paths([log.a, log.b])
    assert [f.code for f in verdict.findings] == ["torn_tail"]
    assert log.verify().ok


def test_a_crashed_run_is_rolled_back_and_a_torn_order_line_cut(log: Log) -> None:
    with TreeStore(log.config.tree_dir) as store:
        store.append([b"\x07" * 32] * 5)  # leaves whose order records never committed
    with open(log.config.order_path, "ab") as f:
        f.write(b'{"count":5,"end":')
    write_log(log.b, {"req-mst-b3": 2}, host="host-b")
    result = make_checkpoint(log.config, log.key)
    assert (result.size, result.new_entries) == (29, 2)
    assert log.verify().ok
    assert log.config.order_path.read_bytes().endswith(b"}\n")


def test_refuses_to_sign_when_its_tree_was_changed(log: Log) -> None:
    level0 = log.config.tree_dir / "level-00.bin"
    data = bytearray(level0.read_bytes())
    data[26 * 32] ^= 1  # the last leaf, still unpaired: new nodes would be built on it
    level0.write_bytes(bytes(data))
    write_log(log.a, {"req-mst-a4": 2}, host="host-a")
    before = log.config.checkpoint_path.read_bytes()
    with pytest.raises(CheckpointRefused, match="refusing to sign"):
        make_checkpoint(log.config, log.key)
    assert log.config.checkpoint_path.read_bytes() == before
    # the operator's way out: rebuild the tree from the segments, checked against the checkpoint
    level0.write_bytes(bytes(data[:64]))
    with pytest.raises(CheckpointError, match="rebuild"):
        make_checkpoint(log.config, log.key)
    assert rebuild_tree(log.config, log.key.verifier()) == 27
    assert make_checkpoint(log.config, log.key).size == 29


def test_refuses_when_the_order_index_lost_entries_or_the_key_changed(log: Log) -> None:
    order = log.config.order_path.read_bytes()
    log.config.order_path.write_bytes(order.split(b"\n", 1)[1])
    with pytest.raises(CheckpointError, match="order index"):
        make_checkpoint(log.config, log.key)
    log.config.order_path.write_bytes(b"")
    with pytest.raises(CheckpointRefused, match="truncated or replaced"):
        make_checkpoint(log.config, log.key)
    log.config.order_path.write_bytes(order)
    with pytest.raises(CheckpointRefused, match="does not verify with the log key"):
        make_checkpoint(log.config, generate_key("docket.test/audit"))


def test_sources_and_key_come_from_the_environment(tmp_path: Path) -> None:
    key = generate_key("docket.test/audit")
    kf = tmp_path / "log.key"
    kf.write_text(key.encode())
    os.chmod(kf, 0o600)
    env = {
        "DOCKET_LOG_KEY": str(kf),
        "DOCKET_CHECKPOINT_DIR": str(tmp_path / "ck"),
        "DOCKET_CHECKPOINT_SOURCES": f"hue={tmp_path / 'a'}, hanoi={tmp_path / 'b'}",
    }
    config = CheckpointConfig.from_env(env)
    assert [s.label for s in config.sources] == ["hue", "hanoi"]
    assert signer_from_env(env).key_id == key.key_id
    with pytest.raises(ConfigError, match="DOCKET_LOG_KEY is not set"):
        signer_from_env({})
    os.chmod(kf, 0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        signer_from_env(env)
    with pytest.raises(ConfigError, match="unique"):
        parse_sources("x=/a,x=/b")
    with pytest.raises(ConfigError, match="must not contain each other"):
        CheckpointConfig(tmp_path / "a" / "ck", (Source("a", tmp_path / "a"),))
    local = CheckpointConfig.from_env({"DOCKET_AUDIT_DIR": str(tmp_path / "x")})
    assert local.sources == (Source("local", tmp_path / "x"),)


def test_the_private_key_appears_in_no_output(log: Log) -> None:
    secret = log.key.encode().strip().split("+", 4)[4]
    seed = base64.b64decode(secret)[1:]
    for path in log.config.state_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert secret.encode() not in data and seed not in data, path


def test_witness_request_is_the_c2sp_add_checkpoint_body(log: Log) -> None:
    write_log(log.a, {"req-mst-a5": 3}, host="host-a")
    make_checkpoint(log.config, log.key)
    body = add_checkpoint_request(log.config, log.key.verifier(), 27)
    head, _, note = body.partition("\n\n")
    lines = head.split("\n")
    assert lines[0] == "old 27"
    assert all(len(base64.b64decode(x)) == 32 for x in lines[1:])
    assert note == log.config.checkpoint_path.read_text()


def test_checkpoint_text_is_strict() -> None:
    ok = Checkpoint("o", 5, b"r" * 32)
    assert Checkpoint.parse_text(ok.text()) == ok
    for bad, msg in [
        ("o\n05\n" + base64.b64encode(b"r" * 32).decode() + "\n", "decimal"),
        ("o\n5\nAAAA\n", "not 32"),
        ("\n5\n" + base64.b64encode(b"r" * 32).decode() + "\n", "origin"),
        ("o\n5\n", "a tree size and a root"),
    ]:
        with pytest.raises(NoteError, match=msg):
            Checkpoint.parse_text(bad)


# -- completeness: each finding -------------------------------------------------------------


def test_an_intact_log_verifies_and_later_entries_are_only_noted(log: Log) -> None:
    result = log.verify()
    assert result.ok and result.entries_checked == 27 and result.located
    write_log(log.b, {"req-mst-b5": 3}, host="host-b")
    later = log.verify()
    assert later.ok and later.not_checkpointed == 3
    [note] = later.notes
    assert note.code == "not_in_checkpoint" and "req-mst-b5" in note.message


def test_fabricated_chain_inside_the_checkpointed_part_is_found(log: Log) -> None:
    seg = log.segment(log.a)
    lines = seg.read_bytes().splitlines(keepends=True)
    forged = [render_line(e) for e in chain_entries("req-mst-forged", 3)]
    seg.write_bytes(b"".join(lines[:4] + forged + lines[4:]))
    assert verify_paths([log.a, log.b]).ok  # hash chains alone cannot see it
    result = log.verify()
    assert "checkpoint_mismatch" in _codes(result)
    assert any(f.chain_id == "req-mst-forged" for f in result.findings)
    # without the checkpointer's tree it is still a finding, for the log as a whole
    bare = log.verify(tree_dir=log.config.state_dir / "no-tree")
    assert "checkpoint_mismatch" in _codes(bare) and not bare.located


def test_fabricated_chain_in_a_new_segment_is_reported_not_checkpointed(log: Log) -> None:
    writer = AuditWriter(log.b, host="intruder")
    writer.append(chain_entries("req-mst-forged", 2), attempt=1)
    writer.close()
    result = log.verify()
    assert result.ok  # informational: the checkpoint cannot speak for what came after it
    assert any("req-mst-forged" in n.message for n in result.notes)


def test_deleted_chain_is_found(log: Log) -> None:
    seg = log.segment(log.b)
    kept = [x for x in seg.read_bytes().splitlines(keepends=True) if b"req-mst-b2" not in x]
    seg.write_bytes(b"".join(kept))
    assert verify_paths([log.a, log.b]).ok  # a whole chain gone leaves no gap
    result = log.verify()
    assert not result.ok
    assert set(_codes(result)) <= {"missing_entry", "checkpoint_mismatch"}


def test_deleted_segment_is_a_missing_entry(log: Log) -> None:
    log.segment(log.b).unlink()
    result = log.verify()
    [finding] = result.findings
    assert finding.code == "missing_entry" and "11 checkpointed entries" in finding.message


def test_rewritten_suffix_is_found_line_by_line(log: Log) -> None:
    seg = log.segment(log.a)
    lines = seg.read_bytes().splitlines(keepends=True)
    # rewrite req-mst-a2's last two entries and re-hash them, keeping the states in sequence:
    # every hash chain and the lifecycle checks still pass
    a2 = [i for i, x in enumerate(lines) if b"req-mst-a2" in x]
    kept = chain_entries("req-mst-a2", 4)  # deterministic: the real first four entries
    head = ChainHead("req-mst-a2", 4, kept[-1]["hash"])
    state = kept[-1]["docket"]["to_state"]
    for n in (5, 6):
        e, head = build_entry(
            head,
            timestamp=datetime(2026, 12, 1, tzinfo=UTC),
            action="recheck",
            from_state=state,
            to_state=state,
            actor_id="someone.else",
            actor_roles=["approver"],
            organization="forged",
            reason="rewritten",
        )
        lines[a2[n - 1]] = render_line(e)
    seg.write_bytes(b"".join(lines))
    assert verify_paths([log.a, log.b]).ok
    result = log.verify()
    bad = [f for f in result.findings if f.code == "checkpoint_mismatch"]
    assert [(f.chain_id, f.sequence) for f in bad] == [("req-mst-a2", 5), ("req-mst-a2", 6)]
    assert all(f.line == a2[f.sequence - 1] + 1 for f in bad if f.sequence)


def test_truncated_log_is_a_missing_entry(log: Log) -> None:
    seg = log.segment(log.a)
    data = seg.read_bytes()
    seg.write_bytes(data[: len(data) // 2])
    result = log.verify()
    assert "missing_entry" in _codes(result)
    [f] = [f for f in result.findings if f.code == "missing_entry"]
    assert "truncated" in f.message and f.file == str(seg)


def test_bad_signature_or_wrong_key_is_a_finding(log: Log) -> None:
    path = log.config.checkpoint_path
    text = path.read_text()
    path.write_text(text.replace("\n27\n", "\n26\n"))
    assert _codes(log.verify()) == ["bad_checkpoint_signature"]
    path.write_text(text)
    other = generate_key("docket.test/audit").verifier()
    result = verify_completeness([log.a, log.b], path, other)
    assert _codes(result) == ["bad_checkpoint_signature"]


def test_rewritten_or_truncated_order_index_is_found(log: Log) -> None:
    order = log.config.order_path
    original = order.read_bytes()
    records = read_order(order)
    # swap the two sources' ranges (first indexes adjusted so the index still parses)
    a, b = records
    swapped = [
        type(a)(0, b.count, b.source, b.path, b.start, b.end),
        type(a)(b.count, a.count, a.source, a.path, a.start, a.end),
    ]
    order.write_bytes(b"".join(r.to_json() + b"\n" for r in swapped))
    result = log.verify()
    assert "checkpoint_mismatch" in _codes(result)
    order.write_bytes(original.split(b"\n", 1)[0] + b"\n")
    assert "missing_entry" in _codes(log.verify())
    order.write_bytes(b"garbage\n")
    assert _codes(log.verify()) == ["index_invalid"]


# -- the CLI ---------------------------------------------------------------------------------


def test_cli_checkpoint_and_verify_exit_codes(
    log: Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kf = tmp_path / "log.key"
    kf.write_text(log.key.encode())
    os.chmod(kf, 0o600)
    pub = tmp_path / "log.pub"
    pub.write_text(log.vkey)
    write_log(log.a, {"req-mst-a6": 2}, host="host-a")
    state = str(log.config.state_dir)
    srcs = ["--sources", f"host-a={log.a},host-b={log.b}"]
    assert main(["checkpoint", "--state", state, *srcs, "--key", str(kf)]) == 0
    assert "size 29" in capsys.readouterr().out
    cp = str(log.config.checkpoint_path)
    assert main(["verify", str(log.a), str(log.b), "--checkpoint", cp, "--key", str(pub)]) == 0
    out = capsys.readouterr().out
    assert "checkpoint OK: docket.test/audit size 29" in out
    for seg in log.a.glob("*.jsonl"):
        seg.unlink()
    assert main(["verify", str(log.a), str(log.b), "--checkpoint", cp, "--key", log.vkey]) == 1
    assert "missing_entry" in capsys.readouterr().out
    assert main(["verify", str(log.b), "--checkpoint", cp]) == 2
    assert "needs --key" in capsys.readouterr().err
    assert main(["verify", str(log.b), "--checkpoint", cp, "--key", "nonsense"]) == 2
    assert (
        main(["verify", str(log.b), "--checkpoint", str(tmp_path / "none"), "--key", log.vkey]) == 2
    )
    assert "cannot read" in capsys.readouterr().err
    os.chmod(kf, 0o644)
    assert main(["checkpoint", "--state", state, *srcs, "--key", str(kf)]) == 2
    assert "chmod 600" in capsys.readouterr().err


def test_checkpoints_while_two_writer_processes_append(tmp_path: Path) -> None:
    """Segments grow while the checkpointer reads them: every checkpoint is consistent with the
    last, a half-written batch is never taken, and in the end every entry is in exactly once."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys, time\n"
        f"sys.path[:0] = [{str(root)!r}, {str(Path(__file__).parent)!r}]\n"
        "from pathlib import Path\n"
        "from audit_helpers import chain_entries\n"
        "from audit.writer import AuditWriter\n"
        "w = AuditWriter(Path(sys.argv[1]), host=sys.argv[2])\n"
        "for c in range(12):\n"
        "    entries = chain_entries(f'req-{sys.argv[2]}-{c}', 10)\n"
        "    for i in range(0, 10, 3):\n"
        "        w.append(entries[i:i + 3], attempt=1)\n"
        "        time.sleep(0.01)\n"
        "w.close()\n"
    )
    a, b = tmp_path / "a", tmp_path / "b"
    writers = [
        subprocess.Popen([sys.executable, "-c", code, str(d), host])
        for d, host in ((a, "hue"), (b, "hanoi"))
    ]
    config = CheckpointConfig(tmp_path / "ck", (Source("hue", a), Source("hanoi", b)))
    key = generate_key("docket.test/audit")
    sizes = []
    while any(w.poll() is None for w in writers):
        sizes.append(make_checkpoint(config, key).size)
    assert all(w.wait(timeout=60) == 0 for w in writers)
    final = make_checkpoint(config, key)
    assert final.size == 240
    assert sizes == sorted(sizes) and len(set(sizes)) > 2  # it saw the log grow
    with TreeStore(config.tree_dir) as store:
        history = sorted(int(p.name) for p in (config.state_dir / "checkpoints").iterdir())
        cps = [
            open_checkpoint(
                (config.state_dir / "checkpoints" / f"{n:012d}").read_bytes(), key.verifier()
            ).checkpoint
            for n in history
        ]
        for old, new in itertools.pairwise(cps):
            proof = consistency_proof(store, old.size, new.size)
            verify_consistency(old.size, new.size, old.root, new.root, proof)
    lines = _lines_in_order(config, 240)
    assert len(set(lines)) == 240
    result = verify_completeness([a, b], config.checkpoint_path, key.verifier())
    assert result.ok and result.entries_checked == 240 and result.not_checkpointed == 0


def test_hostile_order_index_entries_are_refused(log: Log) -> None:
    order = log.config.order_path
    for bad in (
        b'{"count":1,"end":9,"first":0,"path":"../../etc/passwd","source":"host-a","start":0}\n',
        b'{"count":1,"end":9,"first":0,"path":"/etc/passwd","source":"host-a","start":0}\n',
        b'{"count":9,"end":3,"first":0,"path":"x.jsonl","source":"host-a","start":0}\n',
        b'{"count":1,"end":9,"first":5,"path":"x.jsonl","source":"host-a","start":0}\n',
        b"[" * 5000 + b"\n",
    ):
        order.write_bytes(bad)
        result = log.verify()
        assert _codes(result) == ["index_invalid"], bad[:40]
        assert result.findings[0].file == str(order)


def test_cli_verify_checkpoint_json(log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    cp = str(log.config.checkpoint_path)
    assert (
        main(["verify", str(log.a), str(log.b), "--checkpoint", cp, "--key", log.vkey, "--json"])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["status"] == "OK"
    summary = doc["checkpoint"]["summary"]
    assert (summary["status"], summary["tree_size"], summary["entries_checked"]) == ("OK", 27, 27)
    assert doc["checkpoint"]["findings"] == [] and doc["checkpoint"]["notes"] == []
