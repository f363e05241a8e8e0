"""Proof bundles: `audit prove` and `audit verify-bundle` (offline, without the log)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import chain_entries, write_log

from audit.bundle import BundleFormatError, build_bundle, verify_bundle
from audit.checkpoint import CheckpointConfig, CheckpointError, Source, make_checkpoint
from audit.cli import main
from audit.note import ALG_COSIGNATURE_V1, generate_key
from audit.witness import Witness, parse_add_checkpoint
from audit.writer import render_line

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def setup(tmp_path: Path) -> tuple[CheckpointConfig, Any]:
    a, b = tmp_path / "a", tmp_path / "b"
    write_log(a, {"req-mst-1": 10, "req-mst-2": 3}, host="host-a")
    write_log(b, {"req-mst-3": 5}, host="host-b")
    config = CheckpointConfig(tmp_path / "ck", (Source("host-a", a), Source("host-b", b)))
    key = generate_key("docket.test/audit")
    make_checkpoint(config, key)
    return config, key


def _bundle(setup: tuple[CheckpointConfig, Any], request: str = "req-mst-1") -> dict[str, Any]:
    config, key = setup
    return build_bundle(request, config, key.verifier())


def _verify(doc: dict[str, Any], key: Any, **kw: Any) -> Any:
    return verify_bundle(json.dumps(doc).encode(), key.verifier(), **kw)


def test_a_bundle_verifies_offline(setup: tuple[CheckpointConfig, Any]) -> None:
    doc = _bundle(setup)
    assert len(doc["entries"]) == 10 and doc["tree_size"] == 18
    result = _verify(doc, setup[1])
    assert result.ok, result.findings
    expected = chain_entries("req-mst-1", 10)[-1]["hash"]
    assert result.head == (10, expected) and result.entries == 10


def test_every_line_is_the_exact_stored_line(setup: tuple[CheckpointConfig, Any]) -> None:
    doc = _bundle(setup, "req-mst-3")
    stored = next(setup[0].sources[1].directory.glob("*.jsonl")).read_bytes().splitlines()
    assert [e["line"].encode() for e in doc["entries"]] == stored


def test_a_changed_line_is_not_in_the_checkpoint(setup: tuple[CheckpointConfig, Any]) -> None:
    doc = _bundle(setup)
    doc["entries"][3]["line"] = doc["entries"][3]["line"].replace("Lý do", "Ly do")
    codes = [f.code for f in _verify(doc, setup[1]).findings]
    assert "not_in_checkpoint" in codes


def test_a_removed_entry_is_a_gap_and_a_foreign_one_is_refused(
    setup: tuple[CheckpointConfig, Any],
) -> None:
    doc = _bundle(setup)
    del doc["entries"][4]
    assert [f.code for f in _verify(doc, setup[1]).findings] == ["gap"]
    other = _bundle(setup, "req-mst-2")
    doc = _bundle(setup)
    doc["entries"].append(other["entries"][0])
    assert [f.code for f in _verify(doc, setup[1]).findings] == ["wrong_request"]


def test_a_forged_entry_with_a_real_proof_is_found(setup: tuple[CheckpointConfig, Any]) -> None:
    """Swap in a re-hashed forged line under another leaf's index and proof."""
    doc = _bundle(setup)
    forged = chain_entries("req-mst-1", 10)
    forged[9]["user"]["id"] = "le.van.cuong"
    doc["entries"][9]["line"] = render_line(forged[9]).decode()[:-1]
    result = _verify(doc, setup[1])
    assert "not_in_checkpoint" in [f.code for f in result.findings]


def test_wrong_key_or_edited_checkpoint_proves_nothing(
    setup: tuple[CheckpointConfig, Any],
) -> None:
    doc = _bundle(setup)
    result = verify_bundle(json.dumps(doc).encode(), generate_key("docket.test/audit").verifier())
    assert [f.code for f in result.findings] == ["bad_checkpoint_signature"]
    doc["checkpoint"] = doc["checkpoint"].replace("\n18\n", "\n17\n")
    assert [f.code for f in _verify(doc, setup[1]).findings] == ["bad_checkpoint_signature"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a docket-audit-bundle/v1"),
        (b'{"format": "docket-audit-bundle/v1"}', "request_id"),
        (
            b'{"format": "docket-audit-bundle/v1", "request_id": "r", "checkpoint": "x",'
            b' "entries": [{"index": true, "line": "x", "proof": []}]}',
            "index must be a int",
        ),
    ],
)
def test_a_file_that_is_not_a_bundle_is_refused(
    setup: tuple[CheckpointConfig, Any], data: bytes, message: str
) -> None:
    with pytest.raises(BundleFormatError, match=message):
        verify_bundle(data, setup[1].verifier())


def test_cosignatures_are_checked_when_required(
    setup: tuple[CheckpointConfig, Any], tmp_path: Path
) -> None:
    config, key = setup
    wkey = generate_key("witness.test/w1", ALG_COSIGNATURE_V1)
    witness = Witness(wkey, tmp_path / "w", [key.verifier()])
    note = config.checkpoint_path.read_text()
    line = witness.add_checkpoint(parse_add_checkpoint("old 0\n\n" + note))
    doc = _bundle(setup)
    assert [
        f.code for f in _verify(doc, key, witnesses=[wkey.verifier()], min_cosignatures=1).findings
    ] == ["missing_cosignature"]
    doc["checkpoint"] += line
    result = _verify(doc, key, witnesses=[wkey.verifier()], min_cosignatures=1)
    assert result.ok and result.cosigners == ["witness.test/w1"]


def test_no_checkpointed_entry_is_a_clear_error(setup: tuple[CheckpointConfig, Any]) -> None:
    with pytest.raises(CheckpointError, match="no checkpointed entry"):
        _bundle(setup, "req-unknown-1")


def test_prove_and_verify_bundle_commands(
    setup: tuple[CheckpointConfig, Any], tmp_path: Path
) -> None:
    """The real commands in a subprocess; the verifier gets only the bundle and the vkey."""
    config, key = setup
    kf = tmp_path / "log.key"
    kf.write_text(key.encode())
    os.chmod(kf, 0o600)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DOCKET_LOG_KEY": str(kf),
        "DOCKET_CHECKPOINT_DIR": str(config.state_dir),
        "DOCKET_CHECKPOINT_SOURCES": ",".join(f"{s.label}={s.directory}" for s in config.sources),
    }
    out = tmp_path / "b.json"

    def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "audit", *args],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )

    made = run("prove", "req-mst-3", "--out", str(out))
    assert made.returncode == 0, made.stderr
    # elsewhere, without the log or the checkpointer's files
    away = tmp_path / "auditor"
    away.mkdir()
    shutil.copy(out, away / "b.json")
    shutil.rmtree(config.state_dir)
    ok = run("verify-bundle", "b.json", "--key", key.verifier().vkey(), cwd=away)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: req-mst-3: 5 entries included in docket.test/audit size 18" in ok.stdout
    doc = json.loads(out.read_text())
    doc["entries"][0]["line"] = doc["entries"][0]["line"].replace("maker", "approver")
    (away / "b.json").write_text(json.dumps(doc))
    bad = run("verify-bundle", "b.json", "--key", key.verifier().vkey(), "--json", cwd=away)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["findings"][0]["code"] == "not_in_checkpoint"
    (away / "b.json").write_text("{")
    assert run("verify-bundle", "b.json", "--key", key.verifier().vkey(), cwd=away).returncode == 2


def test_prove_with_paths(setup: tuple[CheckpointConfig, Any], capsys: Any) -> None:
    config, key = setup
    dirs = [str(s.directory) for s in config.sources]
    out = config.state_dir.parent / "x.json"
    args = ["prove", "req-mst-2", *dirs, "--state", str(config.state_dir)]
    assert main([*args, "--key", key.verifier().vkey(), "--out", str(out)]) == 0
    assert "3 entries of req-mst-2" in capsys.readouterr().out
    assert main(["prove", "req-none", "--state", str(config.state_dir), "--key", "x+y+z"]) == 2
