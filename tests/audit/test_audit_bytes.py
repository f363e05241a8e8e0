"""Issue 13's tamper findings, each a test: the stored bytes are the evidence, every input is read
or reported, one nesting limit, lifecycle sense; and a bit-flip sweep over a real demo log.

The demo log (tests/audit/data/demo) was written by `./run demo --exit` with the writer as it
was before the byte-exact layout; tests/audit/data/legacy-writer holds lines with U+2028/U+2029
escaped by that writer. Both must still verify.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from audit_helpers import anchor_of, write_log

from audit.canonical import MAX_NESTING, CanonicalError, canonical
from audit.chain import ENTRY_TAG, hashed_body
from audit.entry import ChainHead, build_entry
from audit.lines import inspect_line, render_line
from audit.show import timeline
from audit.verify import VerifyResult, load_anchors, verify_bytes, verify_paths

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
DEMO = DATA / "demo" / "segment-demo.jsonl"
DEMO_ANCHORS = DATA / "demo" / "anchors.json"


def codes(result: VerifyResult) -> set[str]:
    return {f.code for f in result.findings}


def cli(*args: str, drop_privileges: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "audit", *args]
    if drop_privileges:
        # root reads any file whatever its mode: run without the capabilities that allow it,
        # so a mode-000 file is really unreadable (a real fault, no mock)
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)


def can_make_unreadable() -> bool:
    return os.geteuid() != 0 or shutil.which("setpriv") is not None


@pytest.fixture
def log(tmp_path: Path) -> tuple[Path, dict[str, list[dict[str, Any]]]]:
    path, built = write_log(tmp_path / "log", {"req-mic-a-2026": 6, "req-mic-b-2026": 5})
    assert verify_paths([path]).ok
    return path, built


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


# -- logs written before the byte-exact layout ---------------------------------------------------


def test_logs_written_by_the_earlier_writer_still_verify() -> None:
    for name in ("demo", "legacy-writer"):
        directory = DATA / name
        result = verify_paths([directory], anchors=load_anchors(directory / "anchors.json"))
        assert result.ok, [f.render() for f in result.findings]
        assert result.anchors_checked == 2
    legacy = verify_paths([DATA / "legacy-writer"])
    assert legacy.legacy_lines == 16  # every line holds U+2028/U+2029, escaped by that writer
    assert verify_paths([DEMO]).legacy_lines == 0  # no such character: already byte-exact


def test_the_writer_writes_the_canonical_bytes(log: Any) -> None:
    path, built = log
    by_id = {e["event"]["id"]: e for entries in built.values() for e in entries}
    for line in lines_of(path):
        entry = orjson.loads(line)
        body = canonical(hashed_body(by_id[entry["event"]["id"]]))
        assert line.startswith(body[:-1] + b',"prev_hash":"')
        assert "\u2028".encode() in line  # literal, as in the canonical form
        assert inspect_line(line.rstrip(b"\n")).code is None


# -- duplicate keys, encodings, layout -----------------------------------------------------------

FORGED_USER = b'"user":{"id":"le.van.cuong","roles":["approver"]}'


def _with_second_user(line: bytes, *, forged_last: bool) -> bytes:
    start = line.index(b'"user":')
    end = line.index(b"}", start) + 1
    real = line[start:end]
    pair = real + b"," + FORGED_USER if forged_last else FORGED_USER + b"," + real
    return line[:start] + pair + line[end:]


@pytest.mark.parametrize("forged_last", [True, False])
def test_a_duplicate_key_hiding_a_forged_actor_is_caught(log: Any, forged_last: bool) -> None:
    path, built = log
    lines = lines_of(path)
    lines[1] = _with_second_user(lines[1], forged_last=forged_last)
    path.write_bytes(b"".join(lines))
    anchors = [anchor_of(entries) for entries in built.values()]
    result = verify_paths([path], anchors=anchors)
    found = codes(result)
    assert "non_canonical" in found
    (f,) = [f for f in result.findings if f.code == "non_canonical"]
    assert f.line == 2 and "duplicate key 'user'" in f.message
    # jq and orjson keep the last value: when that is the forged one, its hash fails too
    assert ("hash_mismatch" in found) is forged_last
    rows = timeline(str(f.chain_id), [path])
    assert any("NON-CANONICAL" in r["check"] for r in rows)


def test_crlf_line_endings_are_found_on_every_line(log: Any) -> None:
    path, _built = log
    data = path.read_bytes()
    path.write_bytes(data.replace(b"\n", b"\r\n"))
    result = verify_paths([path])
    assert codes(result) == {"non_canonical"}
    assert len(result.findings) == data.count(b"\n")
    assert all("CRLF" in f.message for f in result.findings)


def test_re_encoded_lines_are_found(log: Any) -> None:
    """The same JSON value, written differently: \\u escapes, spaces, reordered keys."""
    path, _built = log
    lines = lines_of(path)
    entry = json.loads(lines[2])
    variants = {
        "escaped": json.dumps(entry, ensure_ascii=True, separators=(",", ":")).encode(),
        "spaces": json.dumps(entry, ensure_ascii=False).encode(),
        "reordered": json.dumps(
            dict(reversed(list(entry.items()))), ensure_ascii=False, separators=(",", ":")
        ).encode(),
    }
    for name, variant in variants.items():
        path.write_bytes(b"".join([*lines[:2], variant + b"\n", *lines[3:]]))
        result = verify_paths([path])
        assert codes(result) == {"non_canonical"}, (name, [f.render() for f in result.findings])
        assert result.findings[0].line == 3


def test_a_byte_order_mark_and_trailing_spaces_are_found(log: Any) -> None:
    path, _built = log
    lines = lines_of(path)
    lines[0] = b"\xef\xbb\xbf" + lines[0]
    lines[3] = lines[3][:-1] + b"  \n"
    path.write_bytes(b"".join(lines))
    result = verify_paths([path])
    assert codes(result) == {"non_canonical"}
    assert ["byte order mark" in f.message for f in result.findings] == [True, False]
    assert "whitespace" in result.findings[1].message


def test_a_key_after_the_writer_object_is_found(log: Any) -> None:
    """A second top-level "user" after the writer metadata (outside the hashed part)."""
    path, _built = log
    lines = lines_of(path)
    lines[1] = lines[1][:-2] + b"," + FORGED_USER + b"}\n"
    path.write_bytes(b"".join(lines))
    result = verify_paths([path])
    assert "non_canonical" in codes(result) or "hash_mismatch" in codes(result)
    assert not result.ok


# -- every input is read or reported -------------------------------------------------------------


def test_an_empty_file_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "segment-empty.jsonl").write_bytes(b"")
    result = verify_paths([tmp_path])
    assert codes(result) == {"empty_file"}
    run = cli("verify", str(tmp_path))
    assert run.returncode == 1 and "empty_file" in run.stdout and "segment-empty" in run.stdout


def test_a_dangling_symlink_is_a_finding_and_a_dangling_argument_exit_2(log: Any) -> None:
    path, _built = log
    link = path.parent / "segment-elsewhere.jsonl"
    link.symlink_to(path.parent / "moved-away" / "segment.jsonl")
    result = verify_paths([path.parent])
    assert codes(result) == {"dangling_link"}
    assert result.findings[0].file == str(link) and "moved-away" in str(result.findings[0].found)
    assert result.entries == 11  # the rest is still checked
    run = cli("verify", str(link))
    assert run.returncode == 2 and "dangling symbolic link" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_symlinked_directory_is_followed_once(log: Any, tmp_path: Path) -> None:
    path, _built = log
    (tmp_path / "mirror").symlink_to(path.parent)
    (path.parent / "loop").symlink_to(path.parent)  # a cycle must not hang or double count
    result = verify_paths([tmp_path])
    assert result.ok and result.entries == 11 and result.files == 1


def test_a_fifo_is_reported_not_waited_for(log: Any) -> None:
    path, _built = log
    os.mkfifo(path.parent / "segment-fifo.jsonl")
    result = verify_paths([path.parent])
    assert codes(result) == {"unreadable"}
    assert "not a regular file" in result.findings[0].message


def test_files_not_named_jsonl_are_listed(log: Any) -> None:
    path, _built = log
    (path.parent / "segment-old.jsonl.gz").write_bytes(b"\x1f\x8b")
    result = verify_paths([path.parent])
    assert result.ok and result.ignored == [str(path.parent / "segment-old.jsonl.gz")]
    run = cli("verify", str(path.parent))
    assert run.returncode == 0 and "1 files not named *.jsonl were not read" in run.stdout


@pytest.mark.skipif(not can_make_unreadable(), reason="needs setpriv to drop root's read-all")
def test_an_unreadable_segment_and_directory_are_findings_exit_1(log: Any) -> None:
    path, _built = log
    secret = path.parent / "sub"
    secret.mkdir()
    shutil.copy(path, secret / "segment-copy.jsonl")
    hidden = path.parent / "segment-hidden.jsonl"
    shutil.copy(path, hidden)
    try:
        hidden.chmod(0)
        secret.chmod(0)
        run = cli("verify", "--json", str(path.parent), drop_privileges=os.geteuid() == 0)
    finally:
        secret.chmod(0o755)
        hidden.chmod(0o644)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    out = orjson.loads(run.stdout)
    unreadable = {f["file"]: f["found"] for f in out["findings"] if f["code"] == "unreadable"}
    assert set(unreadable) == {str(secret), str(hidden)}
    assert all("PermissionError" in found for found in unreadable.values())
    assert out["summary"]["entries"] == 11  # what could be read was checked


@pytest.mark.skipif(not can_make_unreadable(), reason="needs setpriv to drop root's read-all")
def test_report_and_show_refuse_an_unreadable_log_with_exit_2(log: Any) -> None:
    path, _built = log
    hidden = path.parent / "segment-hidden.jsonl"
    shutil.copy(path, hidden)
    try:
        hidden.chmod(0)
        drop = os.geteuid() == 0
        report = cli(
            "report", "--from", "2026-01-01", "--to", "2026-12-31", str(path.parent),
            drop_privileges=drop,
        )  # fmt: skip
        show = cli("show", "req-mic-a-2026", str(path.parent), drop_privileges=drop)
    finally:
        hidden.chmod(0o644)
    for run in (report, show):
        assert run.returncode == 2, run.stderr
        assert f"cannot read {hidden}" in run.stderr and "Permission denied" in run.stderr
        assert "Traceback" not in run.stderr


# -- nesting -------------------------------------------------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"a": value}
    return value


def test_the_writer_and_verify_share_one_nesting_limit(tmp_path: Path) -> None:
    head = ChainHead.genesis("req-mic-deep-2026")

    def entry(depth: int) -> dict[str, Any]:
        # body (1) > docket (2) > data (3) > the nested value
        return build_entry(
            head,
            timestamp=datetime(2026, 1, 1, tzinfo=UTC),
            action="submit",
            from_state=None,
            to_state="pending_approval",
            actor_id="u",
            actor_roles=["officer"],
            organization="X",
            reason=None,
            data={"x": _nested(depth)},
        )[0]

    ok = entry(MAX_NESTING - 3)
    with pytest.raises(CanonicalError, match=f"nested deeper than {MAX_NESTING}"):
        entry(MAX_NESTING - 2)
    assert verify_bytes(render_line(ok)).ok
    # orjson, which verify uses to re-serialise, stops exactly there too
    assert orjson.dumps(_nested(MAX_NESTING))
    with pytest.raises(TypeError):
        orjson.dumps(_nested(MAX_NESTING + 1))


def test_a_body_nested_too_deep_is_an_invalid_entry_and_the_rest_is_checked(log: Any) -> None:
    path, _built = log
    lines = lines_of(path)
    for depth, name in ((MAX_NESTING - 2, "just over"), (300, "over orjson's"), (1100, "way over")):
        e = orjson.loads(lines[4])
        e["docket"]["data"] = "@@"
        nested = b'{"a":' * depth + b'"deep"' + b"}" * depth  # too deep for json.dumps
        deep = orjson.dumps(e).replace(b'"@@"', b'{"x":' + nested + b"}")
        path.write_bytes(b"".join([*lines[:4], deep + b"\n", *lines[5:]]))
        result = verify_paths([path])
        assert codes(result) == {"invalid_entry", "gap"}, (name, result.by_code())
        (bad,) = [f for f in result.findings if f.code == "invalid_entry"]
        assert bad.line == 5 and "nested" in bad.message, name
        assert result.entries == 10


# -- lifecycle sense -----------------------------------------------------------------------------


def _append(entries: list[dict[str, Any]], action: str, frm: str | None, to: str) -> dict[str, Any]:
    last = entries[-1]
    head = ChainHead(last["docket"]["chain_id"], last["event"]["sequence"], last["hash"])
    entry, _ = build_entry(
        head,
        timestamp=datetime(2026, 12, 1, tzinfo=UTC),
        action=action,
        from_state=frm,
        to_state=to,
        actor_id="le.van.cuong",
        actor_roles=["approver"],
        organization="X",
        reason="appended afterwards",
    )
    return entry


def test_an_entry_after_closed_is_a_finding(log: Any) -> None:
    path, built = log
    entries = list(built["req-mic-b-2026"])
    last_state = entries[-1]["docket"]["to_state"]
    closing = _append(entries, "withdraw", last_state, "closed")
    entries.append(closing)
    after = _append(entries, "approve", "closed", "delivering")
    path.write_bytes(path.read_bytes() + render_line(closing) + render_line(after))
    result = verify_paths([path])
    assert codes(result) == {"after_terminal"}
    (f,) = result.findings
    assert (f.chain_id, f.sequence) == ("req-mic-b-2026", 7) and "closed" in f.message


def test_a_from_state_that_is_not_the_previous_to_state_is_a_finding(log: Any) -> None:
    path, built = log
    entries = list(built["req-mic-b-2026"])
    jumped = _append(entries, "reinstated", "reinstating", "closed")
    path.write_bytes(path.read_bytes() + render_line(jumped))
    result = verify_paths([path])
    assert codes(result) == {"state_mismatch"}
    assert result.findings[0].found == "from_state reinstating"
    assert result.findings[0].expected == "from_state verifying"  # where entry 5 ended


# -- a bit-flip sweep over a real demo log -------------------------------------------------------


def _writer_span(line: bytes) -> range:
    """The bytes of the writer object: outside the hash by design."""
    start = line.rindex(b',"writer":') + len(b',"writer":')
    return range(start, len(line) - 1)


CAUGHT = {"unparseable", "invalid_entry", "non_canonical", "hash_mismatch"}


def test_every_bit_flip_in_a_demo_log_is_caught_or_outside_the_hash() -> None:
    """Every byte of every line flipped (bit = position mod 8; every bit of the first line),
    each line checked on its own: the flip is found, or it lies in the writer metadata. No
    flip raises."""
    data = DEMO.read_bytes()
    missed: list[tuple[int, int, int]] = []
    checked = 0
    for n, line in enumerate(data.splitlines()):
        writer = _writer_span(line)
        for pos in range(len(line)):
            for bit in range(8) if n == 0 else (pos % 8,):
                flipped = bytearray(line)
                flipped[pos] ^= 1 << bit
                result = verify_bytes(bytes(flipped) + b"\n")
                checked += 1
                if not codes(result) & CAUGHT and pos not in writer:
                    missed.append((n + 1, pos, bit))
    assert missed == []
    assert checked > len(data)


def test_bit_flips_through_the_whole_pipeline(tmp_path: Path) -> None:
    """A sample of flips in the file itself, verified with the workflow results' anchors."""
    anchors = load_anchors(DEMO_ANCHORS)
    data = DEMO.read_bytes()
    protected = [True] * len(data)
    pos = 0
    for line in data.splitlines(keepends=True):
        for k in _writer_span(line.rstrip(b"\n")):
            protected[pos + k] = False
        pos += len(line)
    rng = random.Random(20261203)
    target = tmp_path / "segment.jsonl"
    for n, p in enumerate(rng.sample([i for i, x in enumerate(protected) if x], 150)):
        flipped = bytearray(data)
        flipped[p] ^= 1 << (n % 8)
        target.write_bytes(bytes(flipped))
        assert not verify_paths([target], anchors=anchors).ok, (p, n % 8)


# -- values outside the canonical subset -------------------------------------------------------


def _forged_with(value: Any) -> bytes:
    """A line whose hash was computed by hand over orjson's bytes (no Docket writer would)."""
    head = ChainHead.genesis("req-mic-num-2026")
    entry, _ = build_entry(
        head,
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        action="submit",
        from_state=None,
        to_state="pending_approval",
        actor_id="u",
        actor_roles=["officer"],
        organization="X",
        reason=None,
        data={"x": "placeholder"},
    )
    entry["docket"]["data"]["x"] = value
    body = orjson.dumps(hashed_body(entry), option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(ENTRY_TAG + bytes.fromhex(entry["prev_hash"]) + body).hexdigest()
    return body[:-1] + f',"prev_hash":"{entry["prev_hash"]}","hash":"{digest}"}}\n'.encode()


@pytest.mark.parametrize(
    ("value", "default_catches"),
    [(0.5, True), ([1.25], True), (2**53 + 1, True), (1e16, False)],
)
def test_numbers_outside_the_subset(value: Any, default_catches: bool) -> None:
    line = _forged_with(value)
    assert ("invalid_entry" in codes(verify_bytes(line))) is default_catches
    assert "invalid_entry" in codes(verify_bytes(line, strict=True))
