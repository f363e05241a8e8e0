"""`audit verify --trust`: every human entry's signature and credential, checked offline.

The genuine entries are made by the production path the workflow runs (docket.intake admits
the signed submission and commands with real keys and OpenSSH certificates, docket.case plans
the entries); the forged ones are what an attacker with write access to the log could write:
an entry changed or added, then the whole chain re-hashed, so that the hash chain alone is
clean and only the signatures tell. Each finding code has a test that would fail without it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from identity_support import (
    NOW,
    Official,
    Org,
    make_official,
    make_org,
    make_trust,
    odd_certificate,
    trust_toml,
)

from audit.canonical import canonical
from audit.chain import genesis_hash, hash_of_canonical, hashed_body
from audit.cli import main
from audit.entry import ChainHead, build_entry
from audit.lines import render_line
from audit.signatures import (
    CredentialCache,
    _not_a_command,
    check_entry,
    check_signatures_paths,
    signed_order_fingerprint,
)
from audit.verify import verify_paths
from docket import sshsig
from docket.case import Case, Planned
from docket.credentials import TrustRoots, check_certificate
from docket.intake import Deployment, TrustSnapshot, admit_command, admit_submission
from docket.keys import generate_key, public_key_line_of
from docket.lifecycle import Role
from docket.models import SYSTEM_ACTOR, Actor, Command, Order
from docket.reference import default_reference
from docket.signer import sign_command
from docket.statement import SignedCommand
from docket.validation import fingerprint

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REF = default_reference()
M = timedelta(minutes=1)
Entry = dict[str, Any]


class People:
    """The organizations (real CA keys) and officials (real keys and certificates)."""

    def __init__(self) -> None:
        self.mic = make_org("mic", ("authority:mic",), (Role.OFFICER, Role.APPROVER))
        self.meta = make_org("meta", ("platform:facebook",), (Role.PLATFORM_LIAISON,))
        self.google = make_org("google", ("platform:youtube",), (Role.PLATFORM_LIAISON,))
        self.board = make_org("board", ("any",), (Role.APPEAL_REVIEWER,))
        self.owners = make_org("owners", ("any",), (Role.APPELLANT,))
        self.maker = make_official(self.mic, "nguyen.van.an", [Role.OFFICER])
        self.approver = make_official(self.mic, "tran.thi.binh", [Role.APPROVER], serial=2)
        self.liaison = make_official(self.meta, "liaison.facebook", [Role.PLATFORM_LIAISON])
        self.youtube = make_official(self.google, "liaison.youtube", [Role.PLATFORM_LIAISON])
        self.reviewer = make_official(self.board, "pham.thi.dung", [Role.APPEAL_REVIEWER])
        self.owner = make_official(self.owners, "hoang.minh.uploader", [Role.APPELLANT])

    @property
    def orgs(self) -> tuple[Org, ...]:
        return (self.mic, self.meta, self.google, self.board, self.owners)

    def trust(self, **kwargs: Any) -> TrustRoots:
        return make_trust(*self.orgs, **kwargs)


@pytest.fixture(scope="module")
def people() -> People:
    return People()


def order(as_the_client_signs: bool = True) -> dict[str, Any]:
    """The seed order: as docket.client signs it (the model's JSON form, defaults included),
    or as written in the example file (optional fields left out)."""
    raw: dict[str, Any] = json.loads(
        (EXAMPLES / "seed" / "mic-facebook-2017.json").read_text(encoding="utf-8")
    )
    if as_the_client_signs:
        dumped: dict[str, Any] = Order.model_validate(raw).model_dump(mode="json")
        return dumped
    return raw


class Run:
    """A request driven as the workflow drives it: each signed command admitted
    (docket.intake) and planned (docket.case) at the time given, then committed."""

    def __init__(
        self, people: People, trust: TrustRoots, at: datetime = NOW, *, dumped: bool = True
    ) -> None:
        self.dumped = dumped
        self.people = people
        self.trust = trust
        self.now = at
        self.deployment = Deployment(
            reference=REF, trust=TrustSnapshot(trust=trust, max_age_seconds=300)
        )
        self.case: Case | None = None
        self.request_id = "req-mic-1475-btttt-ptth-ttdt"
        self.signed: list[SignedCommand] = []

    @property
    def entries(self) -> list[Entry]:
        assert self.case is not None
        return list(self.case.timeline)

    def _commit(self, planned: Planned) -> Entry:
        assert self.case is not None
        self.case.commit(planned)
        self.now += M
        return planned.entry

    def submit(self) -> Entry:
        signed = sign_command(
            self.people.maker.signer,
            self.request_id,
            "submit",
            "nguyen.van.an",
            {"order": order(self.dumped)},
            self.now,
        )
        self.signed.append(signed)
        request, signature = admit_submission(
            signed, self.deployment, workflow_id=self.request_id, now=self.now
        )
        self.case = Case(request)
        return self._commit(self.case.plan_submission(self.now, [], signature=signature))

    def command(self, who: Official, trigger: str, payload: dict[str, Any]) -> Entry:
        assert self.case is not None
        signed = sign_command(who.signer, self.request_id, trigger, who.actor, payload, self.now)
        self.signed.append(signed)
        command, signature = admit_command(
            trigger,
            signed,
            self.trust,
            request_id=self.request_id,
            parties=(("authority", "mic"), ("platform", "facebook")),
            now=self.now,
        )
        return self._commit(self.case.plan_command(command, self.now, signature=signature))

    def platform(self, command: Command) -> Entry:
        """A platform's answer through its API (no signature; the workflow's own actor)."""
        assert self.case is not None
        return self._commit(self.case.plan_command(command, self.now))

    def system(self, trigger: str, **kwargs: Any) -> Entry:
        assert self.case is not None
        planned = self.case.plan_system(
            trigger, self.now, reason=f"{trigger} (test)", actor=SYSTEM_ACTOR, **kwargs
        )
        return self._commit(planned)


PLATFORM = Actor(
    id="platform:facebook", roles=(Role.PLATFORM_LIAISON,), organization="Facebook (Meta)"
)
ITEMS = ("fb-1", "fb-2", "fb-3", "fb-4", "fb-5")


def genuine(
    people: People, trust: TrustRoots | None = None, at: datetime = NOW, *, dumped: bool = True
) -> Run:
    """submit, approve, delivered, acknowledge (signed liaison), report_effect (the platform's
    API), file_appeal of a decline (the officer), decide_appeal (the board)."""
    from docket.models import ReportEffect

    run = Run(people, trust or people.trust(), at, dumped=dumped)
    run.submit()
    run.command(people.approver, "approve", {"reason": "Đủ căn cứ pháp lý, đồng ý gửi."})
    run.system(
        "delivered",
        change={"ticket": "FB-T-1", "sent_at": run.now, "received_at": run.now + M},
    )
    run.command(
        people.liaison,
        "acknowledge",
        {"reason": "Received", "acknowledged_at": "2026-03-02T16:05:00+07:00"},
    )
    run.platform(
        ReportEffect.model_validate(
            {
                "actor": PLATFORM.model_dump(mode="json"),
                "reason": "reported through the facebook API",
                "effects": [
                    {"item_id": i, "effect": "declined", "reason": "Not against local law"}
                    for i in ITEMS
                ],
            }
        )
    )
    run.system("verified")
    run.command(
        people.maker,
        "file_appeal",
        {
            "reason": "The content is unlawful",
            "appellant_type": "authority",
            "target_items": ["fb-1", "fb-2"],
            "grounds": "Điều 5 khoản 1: mạo danh",
        },
    )
    run.command(
        people.reviewer,
        "decide_appeal",
        {
            "reason": "Decline stands for fb-2",
            "outcome": "partially_reversed",
            "reversed_items": ["fb-1"],
        },
    )
    return run


# --- writing logs, and rewriting them as an attacker would -------------------------------------


def rechain(entries: list[Entry]) -> list[Entry]:
    """The chain re-hashed after its bodies were changed (what someone with write access to the
    log can do): ``verify`` finds nothing without an anchor."""
    out: list[Entry] = []
    prev = genesis_hash(entries[0]["docket"]["chain_id"])
    for sequence, entry in enumerate(entries, 1):
        body = hashed_body(entry)
        body["event"] = {**body["event"], "sequence": sequence}
        body["event"]["id"] = f"{body['docket']['chain_id']}:{sequence}"
        digest = hash_of_canonical(prev, canonical(body))
        out.append({**body, "prev_hash": prev, "hash": digest})
        prev = digest
    return out


def write(directory: Path, entries: list[Entry], name: str = "segment-test.jsonl") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with path.open("ab") as f:
        for entry in entries:
            f.write(render_line(entry))
    return path


def check(
    tmp_path: Path, entries: list[Entry], trust: TrustRoots, **kwargs: Any
) -> tuple[list[tuple[str, int | None]], Any]:
    """Write, verify the chain (must be clean), check the signatures: (code, sequence) list."""
    log = tmp_path / "log"
    write(log, entries)
    chain = verify_paths([log])
    assert chain.ok, [f.render() for f in chain.findings]
    result = check_signatures_paths([log], trust, **kwargs)
    return [(f.code, f.sequence) for f in result.findings], result


def edit(entry: Entry, change: Callable[[Entry], None]) -> Entry:
    copy: Entry = json.loads(json.dumps(entry))
    change(copy)
    return copy


def statement_of(entry: Entry) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(entry["docket"]["signed"]["statement"])
    return loaded


def resign(entry: Entry, who: Official, change: Callable[[dict[str, Any]], None]) -> Entry:
    """The entry with its statement changed and signed again by ``who`` (a genuine key)."""
    statement = statement_of(entry)
    change(statement)
    text = canonical(statement).decode()
    return edit(
        entry,
        lambda e: e["docket"]["signed"].update(
            statement=text, signature=who.signer.sign(text.encode())
        ),
    )


# --- genuine logs ------------------------------------------------------------------------------


def test_a_genuine_log_verifies_and_is_counted(tmp_path: Path, people: People) -> None:
    run = genuine(people)
    entries = run.entries
    assert [e["event"]["action"] for e in entries] == [
        "submit",
        "approve",
        "delivered",
        "acknowledge",
        "report_effect",
        "verified",
        "file_appeal",
        "decide_appeal",
    ]
    codes, result = check(tmp_path, entries, run.trust)
    assert codes == []
    assert result.notes == []
    summary = result.summary()
    assert summary["status"] == "OK"
    assert (summary["signed"], summary["verified"], summary["checked"]) == (5, 5, 5)
    assert (summary["legacy_unsigned"], summary["unsigned"], summary["human_entries"]) == (0, 0, 5)


def test_an_order_signed_without_its_defaults(tmp_path: Path, people: People) -> None:
    """A client that signs the order as written (optional fields left out): the workflow
    fingerprints the model, so the audit validates the order too and finds it bound."""
    run = genuine(people, dumped=False)
    submitted = json.loads(run.entries[0]["docket"]["signed"]["statement"])["payload"]["order"]
    assert "priority" in order(False) and "platform" not in submitted["items"][0]
    assert signed_order_fingerprint(submitted) != run.entries[0]["docket"]["request"]["fingerprint"]
    codes, result = check(tmp_path, run.entries, run.trust)
    assert codes == [] and result.verified == 5
    entries = run.entries
    entries[0] = edit(entries[0], lambda e: e["docket"]["request"].update(reference="1476/X"))
    codes, result = check(tmp_path / "forged", rechain(entries), run.trust)
    assert codes == [("statement_mismatch", 1)]
    assert "payload.order.reference" in result.findings[0].message


@pytest.mark.parametrize(
    "example",
    ["seed/mic-facebook-2017.json", "seed/mic-youtube-2017.json", "other/eu-dsa-order.json"],
)
def test_signed_order_fingerprint_is_the_workflow_s(example: str) -> None:
    model = Order.model_validate(json.loads((EXAMPLES / example).read_text(encoding="utf-8")))
    assert signed_order_fingerprint(model.model_dump(mode="json")) == fingerprint(model)
    assert signed_order_fingerprint({"issued_at": "not a time"}) is None
    assert signed_order_fingerprint(["not", "an", "order"]) is None


def test_identical_copies_count_once_and_a_torn_tail_is_not_read(
    tmp_path: Path, people: People
) -> None:
    run = genuine(people)
    log = tmp_path / "log"
    write(log, run.entries)
    write(log, run.entries[:3], "segment-retry.jsonl")  # a retried write, on another worker
    torn = render_line(run.entries[1])[:-40]  # a worker died mid-write
    with (log / "segment-retry.jsonl").open("ab") as f:
        f.write(torn)
    result = check_signatures_paths([log], run.trust)
    assert result.findings == []
    assert (result.signed, result.verified, result.human) == (5, 5, 5)


def test_checked_at_the_entry_time_not_today(tmp_path: Path, people: People) -> None:
    """A credential that has expired since, or a key revoked after the entry was signed, does
    not make an old entry bad; one revoked before it does, and so does one without a time."""
    run = genuine(people)
    approver_key = people.approver.fingerprint
    approve_at = datetime.fromisoformat(run.entries[1]["@timestamp"])
    later = people.trust(revoked=[{"key": approver_key, "revoked_at": approve_at + M}])
    codes, _ = check(tmp_path / "a", run.entries, later)
    assert codes == []
    earlier = people.trust(revoked=[{"key": approver_key, "revoked_at": approve_at - M}])
    codes, result = check(tmp_path / "b", run.entries, earlier)
    assert codes == [("key_revoked", 2)]
    assert "revoked on" in result.findings[0].message
    undated = people.trust(revoked=[approver_key])
    assert check(tmp_path / "c", run.entries, undated)[0] == [("key_revoked", 2)]
    ca = people.trust(revoked=[{"key": people.board.ca_line, "revoked_at": NOW - M}])
    assert check(tmp_path / "d", run.entries, ca)[0] == [("key_revoked", 8)]


def test_credential_expired_and_not_yet_valid_at_the_entry_time(
    tmp_path: Path, people: People
) -> None:
    short = make_official(
        people.mic, "tran.thi.binh", [Role.APPROVER], valid_after=NOW, valid_before=NOW + 2 * M
    )
    trust = people.trust()
    run = Run(people, trust)
    run.submit()
    run.command(short, "approve", {"reason": "in time"})  # at NOW + 1 min: valid
    assert check(tmp_path / "ok", run.entries, trust)[0] == []
    late = run.entries
    late[1] = edit(late[1], lambda e: e.update({"@timestamp": "2026-03-02T09:30:00.000000Z"}))
    codes, result = check(tmp_path / "late", rechain(late), trust)
    assert codes == [("credential_expired", 2)]
    assert "expired at 2026-03-02T09:02:00Z" in result.findings[0].message
    early = run.entries
    early[1] = edit(early[1], lambda e: e.update({"@timestamp": "2026-03-02T08:59:00.000000Z"}))
    assert check(tmp_path / "early", rechain(early), trust)[0] == [("credential_not_yet_valid", 2)]


# --- unsigned and legacy -----------------------------------------------------------------------


def human_entry(
    chain: ChainHead, at: datetime, from_state: str | None = "pending_approval"
) -> Entry:
    entry, _ = build_entry(
        chain,
        timestamp=at,
        action="approve",
        from_state=from_state,
        to_state="delivering",
        actor_id="tran.thi.binh",
        actor_roles=["approver"],
        organization="Organization mic",
        reason="no signature",
    )
    return entry


def test_unsigned_command_after_signing_required_from(tmp_path: Path, people: People) -> None:
    run = genuine(people)
    entries = run.entries
    entries[1] = edit(entries[1], lambda e: e["docket"].pop("signed"))
    codes, result = check(tmp_path, rechain(entries), run.trust)
    assert codes == [("unsigned_command", 2)]
    assert result.unsigned == 1 and result.signed == 4
    assert "no docket.signed" in str(result.findings[0].found)


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ({"id": "docket", "roles": ["system"]}, "approve recorded as the system"),
        (
            {"id": "platform:facebook", "roles": ["platform_liaison"]},
            "approve recorded as platform:facebook's API report",
        ),
    ],
)
def test_a_person_s_command_attributed_to_the_system_or_a_platform_api(
    tmp_path: Path, people: People, user: dict[str, Any], expected: str
) -> None:
    run = genuine(people)
    entries = run.entries

    def forge(e: Entry) -> None:
        e["docket"].pop("signed")
        e["user"] = user

    entries[1] = edit(entries[1], forge)
    codes, result = check(tmp_path, rechain(entries), run.trust)
    assert codes == [("unsigned_command", 2)]
    assert result.findings[0].found == expected


def test_system_and_platform_api_entries_are_not_human(tmp_path: Path, people: People) -> None:
    run = genuine(people)
    _, result = check(tmp_path, run.entries, run.trust)
    assert result.human == 5  # delivered (system) and report_effect (the API) are not counted


def test_legacy_unsigned_is_a_note_not_a_finding(tmp_path: Path, people: People) -> None:
    trust = people.trust(signing_required_from=NOW)
    chain = ChainHead.genesis("req-mic-legacy")
    entries = []
    for i, action in enumerate(("submit", "approve")):
        entry, chain = build_entry(
            chain,
            timestamp=NOW - timedelta(days=3) + i * M,
            action=action,
            from_state=None if i == 0 else "pending_approval",
            to_state="pending_approval" if i == 0 else "delivering",
            actor_id="nguyen.van.an" if i == 0 else "tran.thi.binh",
            actor_roles=["officer"] if i == 0 else ["approver"],
            organization="Organization mic",
            reason="before signing",
        )
        entries.append(entry)
    # ... and one on the day signing became required
    after = human_entry(chain, NOW + M, from_state="delivering")
    codes, result = check(tmp_path, [*entries, after], trust)
    assert codes == [("unsigned_command", 3)]
    assert [(n.code, n.chain_id, n.sequence) for n in result.notes] == [
        ("legacy_unsigned", "req-mic-legacy", 1)
    ]
    assert result.notes[0].found == "2 unsigned (sequences 1, 2)"
    assert (result.legacy, result.unsigned, result.checked) == (2, 1, 1)


# --- the signature and the credential ----------------------------------------------------------


def test_statement_altered_with_its_entry_is_a_bad_signature(
    tmp_path: Path, people: People
) -> None:
    """The reason changed in the statement and in event.reason alike: the entry reads
    consistently, the chain is re-hashed, only the signature tells."""
    run = genuine(people)
    entries = run.entries
    forged_reason = "Approved without checking"

    def forge(e: Entry) -> None:
        statement = statement_of(e)
        statement["payload"]["reason"] = forged_reason
        e["docket"]["signed"]["statement"] = canonical(statement).decode()
        e["event"]["reason"] = forged_reason

    entries[1] = edit(entries[1], forge)
    codes, result = check(tmp_path, rechain(entries), run.trust)
    assert codes == [("bad_signature", 2)]
    assert "altered after signing" in result.findings[0].message


def test_signature_of_another_command_is_a_bad_signature(tmp_path: Path, people: People) -> None:
    run = genuine(people)
    entries = run.entries
    other = sign_command(
        people.approver.signer, run.request_id, "approve", "tran.thi.binh", {"reason": "x"}, NOW
    )
    entries[1] = edit(entries[1], lambda e: e["docket"]["signed"].update(signature=other.signature))
    assert check(tmp_path, rechain(entries), run.trust)[0] == [("bad_signature", 2)]


def test_unknown_key(tmp_path: Path, people: People) -> None:
    run = genuine(people)
    without_board = make_trust(people.mic, people.meta, people.google, people.owners)
    codes, result = check(tmp_path, run.entries, without_board)
    assert codes == [("unknown_key", 8)]
    assert people.board.ca_fingerprint in result.findings[0].message


def test_role_the_organization_may_not_grant(tmp_path: Path, people: People) -> None:
    """The platform's CA writes `approver` into a credential: refused whatever it says."""
    run = genuine(people)
    rogue = make_official(people.meta, "liaison.facebook", [Role.APPROVER])
    entries = run.entries
    entries[3] = resign(entries[3], rogue, lambda s: None)
    codes, result = check(tmp_path, rechain(entries), run.trust)
    assert ("role_not_granted", 4) in codes
    assert (
        "may not grant" in next(f for f in result.findings if f.code == "role_not_granted").message
    )


def test_roles_in_the_entry_not_in_the_credential(tmp_path: Path, people: People) -> None:
    run = genuine(people)
    entries = run.entries
    entries[0] = edit(entries[0], lambda e: e["user"].update(roles=["officer", "approver"]))
    codes, result = check(tmp_path, rechain(entries), run.trust)
    assert codes == [("role_not_granted", 1)]
    assert result.findings[0].expected == ["officer"]


def test_malformed_proofs(tmp_path: Path, people: People) -> None:
    run = genuine(people)
    entries = run.entries
    entries[1] = edit(entries[1], lambda e: e["docket"]["signed"].pop("signature"))
    entries[3] = edit(
        entries[3],
        lambda e: e["docket"]["signed"].update(
            statement=json.dumps(statement_of(e), indent=1)  # same JSON, not canonical
        ),
    )
    entries[6] = edit(entries[6], lambda e: e["docket"]["signed"].update(credential_serial="1"))
    codes, result = check(tmp_path, rechain(entries), run.trust)
    assert ("malformed_signature", 2) in codes
    assert ("malformed_statement", 4) in codes
    assert ("bad_signature", 4) in codes  # the signed bytes were the canonical ones
    assert ("malformed_signature", 7) in codes
    by_seq = {f.sequence: f for f in result.findings if f.code == "malformed_signature"}
    assert by_seq[2].found == "docket.signed.signature: missing"
    assert by_seq[7].found == "docket.signed.credential_serial: str"


def test_wrong_namespace_and_bare_key(tmp_path: Path, people: People) -> None:
    run = genuine(people)
    entries = run.entries
    text = entries[1]["docket"]["signed"]["statement"]
    key = people.approver.key
    git_sig = sshsig.build_sshsig(
        people.approver.certificate.blob,
        "git",
        text.encode(),
        lambda data: sshsig.sign_with_private_key(key, data),
    )
    bare = sshsig.build_sshsig(
        base64.b64decode(public_key_line_of(key).split()[1]),
        "docket-command@v1",
        text.encode(),
        lambda data: sshsig.sign_with_private_key(key, data),
    )
    entries[1] = edit(entries[1], lambda e: e["docket"]["signed"].update(signature=git_sig))
    entries[7] = edit(entries[7], lambda e: e["docket"]["signed"].update(signature=bare))
    codes, _ = check(tmp_path, rechain(entries), run.trust)
    assert ("wrong_namespace", 2) in codes
    assert ("not_a_certificate", 8) in codes


# --- what the statement binds ------------------------------------------------------------------


def test_payload_altered_in_the_entry_only(tmp_path: Path, people: People) -> None:
    """The signature holds, but the entry says something else than what was signed."""
    run = genuine(people)
    entries = run.entries
    entries[1] = edit(entries[1], lambda e: e["event"].update(reason="Approved, no questions"))
    entries[0] = edit(entries[0], lambda e: e["docket"]["items"][2].update(url="https://x.test/"))
    entries[6] = edit(entries[6], lambda e: e["docket"]["appeal"].update(target_items=["fb-3"]))
    entries[7] = edit(entries[7], lambda e: e["docket"]["appeal"].update(outcome="reversed"))
    entries[3] = edit(
        entries[3], lambda e: e["docket"]["data"].update(acknowledged_at="2026-03-05T00:00:00Z")
    )
    codes, result = check(tmp_path, rechain(entries), run.trust)
    assert codes == [
        ("statement_mismatch", 1),
        ("statement_mismatch", 2),
        ("statement_mismatch", 4),
        ("statement_mismatch", 7),
        ("statement_mismatch", 8),
    ]
    messages = [f.message for f in result.findings]
    assert (
        "statement.payload.order.items[2].url (signed) is not the entry's docket.items[2].url"
        in messages[0]
    )
    assert "statement.payload.reason (signed) is not the entry's event.reason" in messages[1]
    assert "payload.acknowledged_at" in messages[2]
    assert "payload.target_items" in messages[3]
    assert "payload.outcome" in messages[4]
    assert result.findings[1].found == "Approved, no questions"
    assert result.findings[1].expected == "Đủ căn cứ pháp lý, đồng ý gửi."


def test_statement_bound_to_another_request_trigger_or_actor(
    tmp_path: Path, people: People
) -> None:
    """Genuine signatures, moved: a command signed for another request, another command's
    statement, an entry that names someone else than the signer."""
    run = genuine(people)
    other = genuine(people)  # the same request id: make the other one's differ
    entries = run.entries
    elsewhere = sign_command(
        people.approver.signer,
        "req-mic-9999-other",
        "approve",
        "tran.thi.binh",
        {"reason": "Đủ căn cứ pháp lý, đồng ý gửi."},
        NOW,
    )
    entries[1] = edit(
        entries[1],
        lambda e: e["docket"]["signed"].update(
            statement=elsewhere.statement, signature=elsewhere.signature
        ),
    )
    # the liaison's acknowledge recorded as a withdraw
    entries[3] = edit(entries[3], lambda e: e["event"].update(action="withdraw"))
    # the reviewer's decision recorded under another reviewer's name
    entries[7] = edit(entries[7], lambda e: e["user"].update(id="someone.else"))
    del other
    _, result = check(tmp_path, rechain(entries), run.trust)
    found = {(f.code, f.sequence, f.message.split(" (signed)")[0]) for f in result.findings}
    assert ("statement_mismatch", 2, "statement.request_id") in found
    assert ("statement_mismatch", 4, "statement.trigger") in found
    assert ("statement_mismatch", 8, "statement.actor") in found
    assert ("action_not_permitted", 4) in {(f.code, f.sequence) for f in result.findings}


def test_issued_after_the_entry(tmp_path: Path, people: People) -> None:
    run = genuine(people)
    entries = run.entries
    entries[1] = resign(
        entries[1], people.approver, lambda s: s.update(issued_at="2026-03-02T10:00:00.000000Z")
    )
    codes, result = check(tmp_path, rechain(entries), run.trust)
    assert codes == [("statement_mismatch", 2)]
    assert "issued_at" in result.findings[0].message


def test_actor_mismatch_and_signer_mismatch(tmp_path: Path, people: People) -> None:
    run = genuine(people)
    entries = run.entries
    # a statement naming the approver, signed with the liaison's credential
    entries[1] = resign(entries[1], people.liaison, lambda s: None)
    entries[7] = edit(
        entries[7],
        lambda e: e["docket"]["signed"].update(key_fingerprint=people.maker.fingerprint),
    )
    codes, result = check(tmp_path, rechain(entries), run.trust)
    assert ("actor_mismatch", 2) in codes
    assert ("signer_mismatch", 8) in codes
    assert ("signer_mismatch", 2) in codes  # the liaison's key, recorded as the approver's
    mismatch = next(f for f in result.findings if f.code == "signer_mismatch" and f.sequence == 8)
    assert mismatch.found == {"key_fingerprint": people.maker.fingerprint}
    assert mismatch.expected == {"key_fingerprint": people.reviewer.fingerprint}


def test_replayed_command(tmp_path: Path, people: People) -> None:
    """The approver's signed approve, recorded a second time in the same request."""
    run = genuine(people)
    entries = run.entries
    state = entries[-1]["docket"]["to_state"]

    def replay(e: Entry) -> None:
        e["@timestamp"] = entries[-1]["@timestamp"]
        e["docket"].update(from_state=state, to_state=state)

    again = edit(entries[1], replay)
    codes, result = check(tmp_path, rechain([*entries, again]), run.trust)
    assert codes == [("replayed_command", 9)]
    assert result.findings[0].found.endswith("at sequences 2 and 9")


def test_action_not_permitted_and_not_for_this_request(tmp_path: Path, people: People) -> None:
    """Genuine credentials used for what they do not allow: the Facebook liaison approving,
    YouTube's liaison acknowledging on a Facebook request."""
    run = genuine(people)
    entries = run.entries

    def as_liaison(e: Entry) -> None:
        e["user"] = {"id": "liaison.facebook", "roles": ["platform_liaison"]}
        signed = e["docket"]["signed"]
        signed.update(
            key_fingerprint=people.liaison.fingerprint,
            ca_fingerprint=people.meta.ca_fingerprint,
            credential_serial=1,
            organization_id="meta",
        )

    entries[1] = resign(
        edit(entries[1], as_liaison), people.liaison, lambda s: s.update(actor="liaison.facebook")
    )

    def as_youtube(e: Entry) -> None:
        e["user"]["id"] = "liaison.youtube"
        e["docket"]["signed"].update(
            key_fingerprint=people.youtube.fingerprint,
            ca_fingerprint=people.google.ca_fingerprint,
            organization_id="google",
        )

    entries[3] = resign(
        edit(entries[3], as_youtube), people.youtube, lambda s: s.update(actor="liaison.youtube")
    )
    codes, _ = check(tmp_path, rechain(entries), run.trust)
    assert codes == [("action_not_permitted", 2), ("not_for_this_request", 4)]


def test_four_eyes_on_proven_identities(tmp_path: Path, people: People) -> None:
    """The maker approving their own request with a second key (and credential) of their own."""
    second = make_official(people.mic, "nguyen.van.an", [Role.APPROVER], serial=9)
    run = genuine(people)
    entries = run.entries

    def as_maker(e: Entry) -> None:
        e["user"]["id"] = "nguyen.van.an"
        e["docket"]["signed"].update(key_fingerprint=second.fingerprint, credential_serial=9)

    entries[1] = resign(
        edit(entries[1], as_maker), second, lambda s: s.update(actor="nguyen.van.an")
    )
    codes, result = check(tmp_path, rechain(entries), run.trust)
    assert codes == [("four_eyes", 2)]
    assert "also this request's maker" in result.findings[0].message


def test_entry_time_unreadable(tmp_path: Path, people: People) -> None:
    run = genuine(people)
    entries = run.entries
    entries[1] = edit(entries[1], lambda e: e.update({"@timestamp": "yesterday"}))
    codes, _ = check(tmp_path, rechain(entries), run.trust)
    assert codes == [("invalid_entry", 2)]


# --- the credential cache gives the same verdicts ----------------------------------------------


def test_cache_agrees_with_check_certificate_across_boundaries(people: People) -> None:
    short = make_official(
        people.mic, "tran.thi.binh", [Role.APPROVER], valid_after=NOW, valid_before=NOW + 10 * M
    )
    revoke_at = NOW + 5 * M
    trust = people.trust(revoked=[{"key": short.fingerprint, "revoked_at": revoke_at}])
    cache = CredentialCache(trust)
    cert = short.certificate
    moments = [
        NOW - M,
        NOW,
        NOW + M,
        revoke_at - timedelta(microseconds=1),
        revoke_at,
        NOW + 10 * M,
        NOW + 2 * M,
    ]
    for at in moments:
        try:
            expected: Any = check_certificate(cert, trust, at)
        except Exception as exc:
            expected = (type(exc), str(exc))
        try:
            got: Any = cache.check(cert, trust, at)
        except Exception as exc:
            got = (type(exc), str(exc))
        assert got == expected, at
    assert cache.parse(cert.blob) is cache.parse(cert.blob)


def test_check_entry_with_and_without_cache(people: People) -> None:
    run = genuine(people)
    cache = CredentialCache(run.trust)
    for entry in run.entries * 2:
        plain = check_entry(entry, run.trust)
        cached = check_entry(entry, run.trust, cache)
        assert (plain.kind, plain.problems, plain.nonce) == (
            cached.kind,
            cached.problems,
            cached.nonce,
        )


def test_parallel_scan_gives_the_same_result(tmp_path: Path, people: People) -> None:
    log = tmp_path / "log"
    for n in range(6):
        run = genuine(people)
        entries = run.entries
        if n == 3:
            entries[1] = edit(entries[1], lambda e: e["event"].update(reason="changed"))
        if n:  # the other chains hold statements signed for request 0: findings to compare
            entries = [renamed(e, f"req-mic-{n}") for e in entries]
        write(log, rechain(entries), f"segment-{n % 2}.jsonl")
    one = check_signatures_paths([log], run.trust, jobs=1)
    two = check_signatures_paths([log], run.trust, jobs=2, chunk_bytes=4096)
    assert one.to_dict() == two.to_dict()
    assert one.summary()["signed"] == 30
    assert {f.chain_id for f in one.findings} == {f"req-mic-{n}" for n in range(1, 6)}


def renamed(entry: Entry, chain_id: str) -> Entry:
    return edit(entry, lambda e: e["docket"].update(chain_id=chain_id))


# --- the command line --------------------------------------------------------------------------


def test_cli_exit_codes_and_json(
    tmp_path: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    trust_file = tmp_path / "trust.toml"
    trust_file.write_text(trust_toml(*people.orgs), encoding="utf-8")
    run = genuine(people)
    good = tmp_path / "good"
    write(good, run.entries)
    assert main(["verify", str(good), "--trust", str(trust_file)]) == 0
    out = capsys.readouterr().out
    assert "signatures OK: 5 human entries checked (5 signed, 5 verified)" in out

    bad = tmp_path / "bad"
    entries = run.entries
    entries[1] = edit(entries[1], lambda e: e["event"].update(reason="changed"))
    write(bad, rechain(entries))
    assert main(["verify", str(bad), "--trust", str(trust_file), "--json"]) == 1
    doc = orjson.loads(capsys.readouterr().out)
    assert doc["summary"]["status"] == "FAILED"
    assert doc["summary"]["findings_by_code"] == {"statement_mismatch": 1}
    assert [f["code"] for f in doc["findings"]] == ["statement_mismatch"]
    assert doc["signatures"]["summary"]["signed"] == 5
    assert doc["signatures"]["summary"]["trust_digest"].startswith("sha256:")

    # without --trust, the chain alone is clean: only signatures see the rewrite
    assert main(["verify", str(bad)]) == 0
    capsys.readouterr()


def test_cli_bad_trust_file_is_exit_2_naming_file_entry_and_field(
    tmp_path: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    run = genuine(people)
    write(tmp_path / "log", run.entries)
    trust_file = tmp_path / "trust.toml"
    text = trust_toml(*people.orgs).replace(
        'may_grant = ["platform_liaison"]', 'may_grant = ["approver"]', 1
    )
    trust_file.write_text(text, encoding="utf-8")
    assert main(["verify", str(tmp_path / "log"), "--trust", str(trust_file)]) == 2
    err = capsys.readouterr().err
    assert f"bad trust file: {trust_file}: organization[1] (id 'meta'): may_grant" in err
    assert main(["verify", str(tmp_path / "log"), "--trust", str(tmp_path / "none.toml")]) == 2
    assert "cannot read the trust file" in capsys.readouterr().err


def test_cli_notes_are_capped_unless_asked(
    tmp_path: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    trust_file = tmp_path / "trust.toml"
    trust_file.write_text(trust_toml(*people.orgs), encoding="utf-8")
    log = tmp_path / "log"
    for n in range(12):
        write(
            log,
            [
                human_entry(
                    ChainHead.genesis(f"req-old-{n:02}"), datetime(2025, 5, 1, tzinfo=UTC), None
                )
            ],
        )
    assert main(["verify", str(log), "--trust", str(trust_file)]) == 0
    out = capsys.readouterr().out
    assert out.count("legacy_unsigned") == 10
    assert "note: 2 more notes like these" in out
    assert "12 legacy unsigned" in out
    assert main(["verify", str(log), "--trust", str(trust_file), "--all-notes"]) == 0
    assert capsys.readouterr().out.count("legacy_unsigned") == 12


def test_hostile_text_in_a_finding_is_escaped(
    tmp_path: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    trust_file = tmp_path / "trust.toml"
    trust_file.write_text(trust_toml(*people.orgs), encoding="utf-8")
    run = genuine(people)
    entries = run.entries
    entries[1] = edit(entries[1], lambda e: e["event"].update(reason="ok\x1b[2J\u202eevil"))
    write(tmp_path / "log", rechain(entries))
    assert main(["verify", str(tmp_path / "log"), "--trust", str(trust_file)]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert "statement_mismatch" in out


# --- lines that are not commands are not parsed, and cannot hide one --------------------------

DATA = Path(__file__).resolve().parent / "data"


def test_lines_skipped_unparsed_are_never_commands(tmp_path: Path, people: People) -> None:
    """Every line the prefilter skips is, parsed, an entry by the system or a platform's API
    with nothing to check; and it does skip those (the demo log's 11 of 19)."""
    run = genuine(people)
    lines = [render_line(e).rstrip(b"\n") for e in run.entries]
    for path in (
        DATA / "signed-demo" / "segment-signed-demo.jsonl",
        DATA / "demo" / "segment-demo.jsonl",
        DATA / "legacy-writer" / "segment-legacy-writer.jsonl",
    ):
        lines += path.read_bytes().splitlines()
    trust = people.trust()
    skipped = 0
    for raw in lines:
        if _not_a_command(raw):
            skipped += 1
            verdict = check_entry(orjson.loads(raw), trust)
            assert verdict.kind in ("system", "platform") and not verdict.problems, raw[:200]
    demo = (DATA / "signed-demo" / "segment-signed-demo.jsonl").read_bytes().splitlines()
    assert sum(map(_not_a_command, demo)) == 11
    assert skipped > 11


def test_a_command_dressed_as_the_system_s_is_still_found(tmp_path: Path, people: People) -> None:
    """An unsigned approve recorded as the system's, with look-alike `event`/`user` objects
    nested where a quick look might take them for the entry's own: parsed and reported."""
    run = genuine(people)
    entries = run.entries

    def forge(e: Entry) -> None:
        e["docket"].pop("signed")
        e["user"] = {"id": "docket", "roles": ["system"]}
        e["docket"]["data"] = {"event": {"action": "verified"}, "user": e["user"]}
        e["event"]["z"] = {"event": {"action": "verified"}}
        e["organization"]["z"] = {"event": {"action": "verified"}, "message": "m"}

    entries[1] = edit(entries[1], forge)
    raw = render_line(rechain(entries)[1])
    assert not _not_a_command(raw)
    codes, _ = check(tmp_path, rechain(entries), run.trust)
    assert codes == [("unsigned_command", 2)]
    # the same line written with an escape or with spaces is parsed whole, never skipped
    system = render_line(rechain(run.entries)[2])
    assert _not_a_command(system)
    assert not _not_a_command(system.replace(b'"user":{', b'"\\u0075ser":{'))
    assert not _not_a_command(system.replace(b'"user":{', b'"user": {'))


def test_bad_credential(tmp_path: Path, people: People) -> None:
    """A certificate the mic CA really issued, but with principals other than its key id."""
    key = generate_key()
    odd = odd_certificate(people.mic.ca_key, key, principals=["tran.thi.binh", "someone.else"])
    run = genuine(people)
    entries = run.entries
    entries[1] = resign(entries[1], Official("tran.thi.binh", key, odd.line), lambda s: None)
    codes, result = check(tmp_path, rechain(entries), run.trust)
    assert codes == [("bad_credential", 2)]
    assert "principals" in result.findings[0].message


def test_four_eyes_on_an_appeal(tmp_path: Path, people: People) -> None:
    """The officer who filed the appeal (and made the request) decides it, with a reviewer's
    credential of their own from the board."""
    second = make_official(people.board, "nguyen.van.an", [Role.APPEAL_REVIEWER], serial=5)
    run = genuine(people)
    entries = run.entries

    def as_maker(e: Entry) -> None:
        e["user"]["id"] = "nguyen.van.an"
        e["docket"]["signed"].update(key_fingerprint=second.fingerprint, credential_serial=5)

    entries[7] = resign(
        edit(entries[7], as_maker), second, lambda s: s.update(actor="nguyen.van.an")
    )
    codes, result = check(tmp_path, rechain(entries), run.trust)
    assert codes == [("four_eyes", 8)]
    assert "also this request's maker, appellant" in result.findings[0].message
