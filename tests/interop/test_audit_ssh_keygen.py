"""Stock `ssh-keygen -Y verify` agrees with `audit verify --trust` on a real demo log.

The log, its trust file and anchors are the demo's own (tests/audit/data/signed-demo, see its
SOURCE.md; no private key). For every human entry, ssh-keygen is run exactly as
docs/auditing.md tells an auditor without Docket's code (the statement and the signature
taken out of the entry, allowed_signers from the trust file, the entry's time as
`-Overify-time`), and Docket's verdict is the command line's. Both accept the genuine entries;
both refuse an entry whose statement or signature was altered (Docket's on a log whose chain
was re-hashed after the change, so that only the signature tells); both refuse the entries of
a revoked key (ssh-keygen with the KRL `./run keys revoked-keys` writes). The shell steps of
docs/auditing.md ("Without Docket's code") run as written, with `$@` for the log's paths.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from identity_support import SSH_KEYGEN

from audit.canonical import canonical
from audit.chain import genesis_hash, hash_of_canonical, hashed_body
from audit.cli import main as audit_main
from audit.lines import render_line
from docket import sshsig
from docket.credentials import NAMESPACE, load_trust
from docket.keys import allowed_signers_text
from docket.keys import main as keys_main
from docket.validation import fingerprint

pytestmark = pytest.mark.skipif(SSH_KEYGEN is None, reason="OpenSSH's ssh-keygen is not installed")

DATA = Path(__file__).resolve().parents[1] / "audit" / "data" / "signed-demo"
LOG = DATA / "segment-signed-demo.jsonl"
TRUST = DATA / "trust.toml"
ANCHORS = DATA / "anchors.json"
JQ = shutil.which("jq")
Entry = dict[str, Any]


def entries() -> list[Entry]:
    return [json.loads(line) for line in LOG.read_text(encoding="utf-8").splitlines()]


def is_human(entry: Entry) -> bool:
    user = entry["user"]
    return user["roles"] != ["system"] and not user["id"].startswith("platform:")


def human_entries() -> list[Entry]:
    return [e for e in entries() if is_human(e)]


def verify_time(entry: Entry) -> str:
    """The entry's @timestamp as ssh-keygen's -Overify-time wants it (to the second, UTC)."""
    stamp: str = entry["@timestamp"]  # 2026-12-03T17:10:05.524891Z
    return stamp[:19].replace("-", "").replace(":", "").replace("T", "") + "Z"


def keygen_accepts(
    tmp: Path, entry: Entry, statement: str, signature: str, *, krl: Path | None = None
) -> bool:
    assert SSH_KEYGEN is not None
    allowed = tmp / "allowed_signers"
    if not allowed.exists():
        allowed.write_text(allowed_signers_text(load_trust(TRUST)), encoding="utf-8")
    sig = tmp / "statement.sig"
    sig.write_text(signature, encoding="utf-8")
    actor = entry["user"]["id"]
    args = [SSH_KEYGEN, "-Y", "verify", "-f", str(allowed), "-I", actor, "-n", NAMESPACE]
    args += ["-s", str(sig), f"-Overify-time={verify_time(entry)}"]
    if krl is not None:
        args += ["-r", str(krl)]
    done = subprocess.run(args, input=statement.encode("utf-8"), capture_output=True, check=False)
    good = done.returncode == 0
    assert good == done.stdout.decode().startswith(f'Good "{NAMESPACE}" signature for {actor}'), (
        done
    )
    return good


def rechain(log: list[Entry]) -> list[Entry]:
    """Every chain of the log re-hashed (what someone with write access can do after a change)."""
    heads: dict[str, str] = {}
    out = []
    for entry in log:
        cid = entry["docket"]["chain_id"]
        prev = heads.get(cid, genesis_hash(cid))
        body = hashed_body(entry)
        digest = hash_of_canonical(prev, canonical(body))
        heads[cid] = digest
        out.append({**body, "prev_hash": prev, "hash": digest})
    return out


def docket_findings(
    tmp: Path, log: list[Entry], capsys: pytest.CaptureFixture[str], trust: Path = TRUST
) -> tuple[int, list[tuple[str, str, int]]]:
    """`python -m audit verify DIR --trust FILE --json`: exit code, (code, chain, sequence)."""
    directory = tmp / "log"
    directory.mkdir(exist_ok=True)
    (directory / "segment.jsonl").write_bytes(b"".join(render_line(e) for e in log))
    capsys.readouterr()
    code = audit_main(["verify", str(directory), "--trust", str(trust), "--json"])
    doc = orjson.loads(capsys.readouterr().out)
    return code, [(f["code"], f["chain_id"], f["sequence"]) for f in doc["findings"]]


def test_the_fixture_is_the_demo_log(capsys: pytest.CaptureFixture[str]) -> None:
    """19 entries, 8 human ones, all signed; the chain matches the demo's anchors."""
    assert len(entries()) == 19
    humans = human_entries()
    assert len(humans) == 8
    assert all("signed" in e["docket"] for e in humans)
    assert all("signed" not in e["docket"] for e in entries() if not is_human(e))
    code = audit_main(
        ["verify", str(LOG), "--trust", str(TRUST), "--anchors", str(ANCHORS), "--json"]
    )
    doc = orjson.loads(capsys.readouterr().out)
    assert code == 0, doc
    assert doc["summary"]["anchors_checked"] == 2
    signatures = doc["signatures"]["summary"]
    assert (signatures["signed"], signatures["verified"], signatures["checked"]) == (8, 8, 8)


def test_both_accept_every_genuine_human_entry(tmp_path: Path) -> None:
    for entry in human_entries():
        signed = entry["docket"]["signed"]
        assert keygen_accepts(tmp_path, entry, signed["statement"], signed["signature"]), entry[
            "event"
        ]["id"]


def alter_statement(entry: Entry) -> Entry:
    """What the entry says changed, in the statement and in the entry alike (a consistent
    forgery): the reason, or for a submission the order's statement of reasons."""
    changed: Entry = json.loads(json.dumps(entry))
    statement = json.loads(changed["docket"]["signed"]["statement"])
    new_reason = "Altered after signing"
    if statement["trigger"] == "submit":
        from docket.models import Order

        statement["payload"]["order"]["statement_of_reasons"] = new_reason
        order = Order.model_validate(statement["payload"]["order"])
        changed["docket"]["request"]["fingerprint"] = fingerprint(order)
    else:
        statement["payload"]["reason"] = new_reason
    changed["event"]["reason"] = new_reason
    changed["docket"]["signed"]["statement"] = canonical(statement).decode()
    return changed


def alter_signature(entry: Entry) -> Entry:
    """One bit of the signature itself flipped (the armor stays ssh-keygen's)."""
    changed: Entry = json.loads(json.dumps(entry))
    blob = bytearray(sshsig.dearmor(changed["docket"]["signed"]["signature"]))
    blob[-10] ^= 0x01  # inside the ed25519 signature, at the end of the envelope
    changed["docket"]["signed"]["signature"] = sshsig.armor(bytes(blob))
    return changed


@pytest.mark.parametrize(
    "alter", [alter_statement, alter_signature], ids=["statement", "signature"]
)
def test_both_refuse_an_altered_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], alter: Callable[[Entry], Entry]
) -> None:
    log = entries()
    humans = [i for i, e in enumerate(log) if is_human(e)]
    assert len(humans) == 8
    for index in humans:
        original = log[index]
        changed = alter(original)
        signed = changed["docket"]["signed"]
        where = original["event"]["id"]
        assert not keygen_accepts(tmp_path, changed, signed["statement"], signed["signature"]), (
            where
        )
        forged = rechain([*log[:index], changed, *log[index + 1 :]])
        code, findings = docket_findings(tmp_path, forged, capsys)
        at = (original["docket"]["chain_id"], original["event"]["sequence"])
        assert code == 1, where
        assert ("bad_signature", *at) in findings, (where, findings)
        # nothing but the signature tells: the chain was re-hashed, the entry reads consistently
        assert {f for f in findings if f[0] != "bad_signature"} == set(), (where, findings)


def test_both_refuse_a_revoked_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The approver's key revoked (fingerprint only, as `./run keys revoke SHA256:...` does):
    Docket finds key_revoked on exactly their entries, and ssh-keygen with the exported KRL
    refuses exactly those."""
    humans = human_entries()
    approver = next(e for e in humans if e["event"]["action"] == "approve")
    revoked_fp = approver["docket"]["signed"]["key_fingerprint"]
    trust = tmp_path / "trust.toml"
    trust.write_text(
        TRUST.read_text(encoding="utf-8")
        + f'\n[[revoked]]\nkey = "{revoked_fp}"\nreason = "laptop stolen"\n'
        + "revoked_at = 2026-12-01T00:00:00Z\n",
        encoding="utf-8",
    )
    assert tomllib.loads(trust.read_text(encoding="utf-8"))["revoked"][0]["key"] == revoked_fp
    krl = tmp_path / "revoked.krl"
    assert keys_main(["revoked-keys", "--trust", str(trust), "--out", str(krl)]) == 0
    capsys.readouterr()
    by_keygen = {
        e["event"]["id"]
        for e in humans
        if not keygen_accepts(
            tmp_path,
            e,
            e["docket"]["signed"]["statement"],
            e["docket"]["signed"]["signature"],
            krl=krl,
        )
    }
    code, findings = docket_findings(tmp_path, entries(), capsys, trust)
    by_docket = {f"{chain}:{seq}" for c, chain, seq in findings if c == "key_revoked"}
    expected = {
        e["event"]["id"] for e in humans if e["docket"]["signed"]["key_fingerprint"] == revoked_fp
    }
    assert code == 1
    assert len(expected) == 3  # two approvals and an escalation by tran.thi.binh
    assert by_keygen == by_docket == expected
    assert {c for c, _, _ in findings} == {"key_revoked"}


@pytest.mark.skipif(JQ is None, reason="jq is not installed")
def test_the_documented_steps_without_docket_s_code(tmp_path: Path) -> None:
    """docs/auditing.md, "Who acted, without Docket's code", as a shell script: jq takes the
    statement and signature out of the entry, ssh-keygen checks them, jq compares what the
    statement binds with what the entry records."""
    allowed = tmp_path / "allowed_signers"
    # the operator's export, or written by hand from the trust file's ca_keys (both below)
    allowed.write_text(allowed_signers_text(load_trust(TRUST)), encoding="utf-8")
    by_hand = tmp_path / "allowed_signers.by_hand"
    trust = tomllib.loads(TRUST.read_text(encoding="utf-8"))
    by_hand.write_text(
        "".join(
            f'* cert-authority,namespaces="{NAMESPACE}" {" ".join(line.split()[:2])} {org["id"]}\n'
            for org in trust["organization"]
            for line in org["ca_keys"]
        ),
        encoding="utf-8",
    )
    script = r"""
set -eu
jq -c --arg id "$ID" 'select(.event.id == $id)' "$LOG" > entry.json
jq -j '.docket.signed.statement' entry.json > statement.json
jq -j '.docket.signed.signature' entry.json > statement.sig
ACTOR=$(jq -r '.user.id' entry.json)
WHEN=$(jq -r '."@timestamp" | sub("\\.[0-9]+Z$"; "Z") | gsub("[-:T]"; "")' entry.json)
ssh-keygen -Y verify -f "$ALLOWED" -I "$ACTOR" -n docket-command@v1 \
    -s statement.sig -Overify-time="$WHEN" < statement.json
jq -c '(.docket.signed.statement | fromjson) as $s | {
    request_id: ($s.request_id == .docket.chain_id),
    trigger: ($s.trigger == .event.action),
    actor: ($s.actor == .user.id),
    reason: ($s.payload.reason == .event.reason)}' entry.json
"""
    ssh_dir = str(Path(str(SSH_KEYGEN)).parent)
    for entry in human_entries():
        for allowed_file in (allowed, by_hand):
            done = subprocess.run(
                ["bash", "-c", script],
                cwd=tmp_path,
                env={
                    **os.environ,
                    "PATH": f"{ssh_dir}:{os.environ.get('PATH', '')}",
                    "ID": entry["event"]["id"],
                    "LOG": str(LOG),
                    "ALLOWED": str(allowed_file),
                },
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, done
            actor = entry["user"]["id"]
            assert f'Good "docket-command@v1" signature for {actor}' in done.stdout + done.stderr
            bound = json.loads(done.stdout.strip().splitlines()[-1])
            submit = entry["event"]["action"] == "submit"  # its payload is the order
            assert bound == {
                "request_id": True,
                "trigger": True,
                "actor": True,
                "reason": not submit,
            }, entry["event"]["id"]
    # the statement file holds exactly the signed bytes (no newline added by jq -j)
    last = human_entries()[-1]
    assert (tmp_path / "statement.json").read_bytes() == last["docket"]["signed"][
        "statement"
    ].encode("utf-8")
    assert base64.b64decode("".join((tmp_path / "statement.sig").read_text().splitlines()[1:-1]))


LOOP = r"""
jq -c 'select(.docket.signed)' "$@" | while IFS= read -r entry; do
    id=$(jq -r '.event.id' <<<"$entry")
    jq -j '.docket.signed.statement' <<<"$entry" > statement.json
    jq -j '.docket.signed.signature' <<<"$entry" > statement.sig
    actor=$(jq -r '.user.id' <<<"$entry")
    when=$(jq -r '."@timestamp" | sub("\\.[0-9]+Z$"; "Z") | gsub("[-:T]"; "")' <<<"$entry")
    if ssh-keygen -Y verify -f allowed_signers -I "$actor" -n docket-command@v1 \
           -s statement.sig -Overify-time="$when" < statement.json > /dev/null 2>&1; then
        echo "good  $id  $actor"
    else
        echo "BAD   $id  $actor"
    fi
done
"""

REPLAYS = r"""
jq -r 'select(.docket.signed) | [.event.id, .docket.chain_id,
        (.docket.signed.statement | fromjson | .nonce)] | @tsv' "$@" \
    | sort -u | cut -f2,3 | sort | uniq -d
"""


def shell(tmp: Path, script: str, *paths: Path) -> list[str]:
    ssh_dir = str(Path(str(SSH_KEYGEN)).parent)
    done = subprocess.run(
        ["bash", "-c", script, "script", *map(str, paths)],
        cwd=tmp,
        env={**os.environ, "PATH": f"{ssh_dir}:{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


@pytest.mark.skipif(JQ is None, reason="jq is not installed")
def test_the_documented_loop_and_replay_search(tmp_path: Path) -> None:
    """docs/auditing.md step 5: every signed entry through ssh-keygen, and replayed nonces."""
    (tmp_path / "allowed_signers").write_text(
        allowed_signers_text(load_trust(TRUST)), encoding="utf-8"
    )
    verdicts = shell(tmp_path, LOOP, LOG)
    assert len(verdicts) == 8 and all(v.startswith("good  ") for v in verdicts)
    assert shell(tmp_path, REPLAYS, LOG, LOG) == []  # a copy of the log: retried writes

    log = entries()
    index = next(i for i, e in enumerate(log) if e["event"]["action"] == "escalate")
    log[index] = alter_signature(log[index])
    approve = next(e for e in log if e["event"]["action"] == "approve")
    replayed = json.loads(json.dumps(approve))  # the same signed approve, again, later
    replayed["event"]["sequence"] = 99
    replayed["event"]["id"] = f"{approve['docket']['chain_id']}:99"
    forged = tmp_path / "forged.jsonl"
    forged.write_bytes(b"".join(render_line(e) for e in [*log, replayed]))
    verdicts = shell(tmp_path, LOOP, forged)
    assert [v for v in verdicts if v.startswith("BAD")] == [
        f"BAD   {log[index]['event']['id']}  {log[index]['user']['id']}"
    ]
    nonce = json.loads(approve["docket"]["signed"]["statement"])["nonce"]
    assert shell(tmp_path, REPLAYS, forged) == [f"{approve['docket']['chain_id']}\t{nonce}"]
