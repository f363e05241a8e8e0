"""C2SP signed notes, vkeys and cosignatures (audit.note).

The example vkey and note are copied (data only) from the C2SP specification
github.com/C2SP/C2SP signed-note.md ("Example"), at commit
5ba5ee830903e91240fc6f9f3a7a9293d49e69c9.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

from audit.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Note,
    NoteError,
    NoteKeyError,
    SignerKey,
    VerifierKey,
    generate_key,
    load_signer,
    load_verifier,
    parse_note,
    verify_note,
)

C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = (
    "This is an example message.\n"
    "\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuw"
    "HjG1Yu72IneyaQM=\n"
)


def test_the_c2sp_example_note_verifies_with_its_vkey() -> None:
    key = VerifierKey.parse(C2SP_VKEY)
    assert key.alg == ALG_ED25519
    note = parse_note(C2SP_NOTE)
    assert note.text == "This is an example message.\n"
    [ok] = verify_note(note, [key])
    assert ok.key == key and ok.timestamp is None
    assert note.render() == C2SP_NOTE
    assert key.vkey() == C2SP_VKEY


def test_the_c2sp_example_fails_when_one_byte_of_the_text_changes() -> None:
    tampered = parse_note(C2SP_NOTE.replace("example message", "example massage"))
    with pytest.raises(NoteError, match="does not verify"):
        verify_note(tampered, [VerifierKey.parse(C2SP_VKEY)])


def test_key_id_is_the_c2sp_formula() -> None:
    key = generate_key("docket.test/log")
    want = hashlib.sha256(b"docket.test/log\n\x01" + key.public).digest()[:4]
    assert key.key_id == want
    wkey = generate_key("witness.test/w", ALG_COSIGNATURE_V1)
    assert wkey.key_id == hashlib.sha256(b"witness.test/w\n\x04" + wkey.public).digest()[:4]
    vkey = key.verifier().vkey()
    name, hex_id, blob = vkey.split("+", 2)
    assert (name, hex_id) == ("docket.test/log", want.hex())
    assert base64.b64decode(blob) == b"\x01" + key.public


def test_sign_and_verify_round_trip_and_unknown_keys_are_ignored() -> None:
    key, other = generate_key("docket.test/log"), generate_key("other.test/log")
    text = "docket.test/log\n3\n" + base64.b64encode(b"r" * 32).decode() + "\n"
    note = Note(text, (other.sign(text), key.sign(text)))
    parsed = parse_note(note.render())
    assert parsed == note
    [ok] = verify_note(parsed, [key.verifier()])
    assert ok.key.name == "docket.test/log"
    with pytest.raises(NoteError, match="no signature by a trusted key"):
        verify_note(parse_note(Note(text, (other.sign(text),)).render()), [key.verifier()])


def test_a_known_key_with_a_bad_signature_rejects_the_whole_note() -> None:
    key = generate_key("docket.test/log")
    text = "hello\n"
    good = key.sign(text)
    bad = type(good)(good.name, good.key_id, bytes(64))
    with pytest.raises(NoteError, match="does not verify"):
        verify_note(Note(text, (good, bad)), [key.verifier()])


def test_cosignature_v1_signs_the_c2sp_message_with_a_timestamp() -> None:
    witness = generate_key("witness.test/w1", ALG_COSIGNATURE_V1)
    text = "docket.test/log\n7\n" + base64.b64encode(b"x" * 32).decode() + "\n"
    sig = witness.sign(text, timestamp=1_700_000_000)
    assert int.from_bytes(sig.signature[:8], "big") == 1_700_000_000
    message = b"cosignature/v1\ntime 1700000000\n" + text.encode()
    witness.private.public_key().verify(sig.signature[8:], message)  # raises if wrong
    [ok] = verify_note(Note(text, (sig,)), [witness.verifier()])
    assert ok.timestamp == 1_700_000_000
    with pytest.raises(NoteError, match="timestamp"):
        witness.sign(text)


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("no blank line\n— a AAAAAAA=\n", "no blank line"),
        ("text\n\n— a AAAAAAA=", "end with a newline"),
        ("text\n\nsig without dash\n", "is not"),
        ("text\n\n— a !!!\n", "not valid base64"),
        ("text\n\n— a AAAA\n", "too short"),
        ("te\rxt\n\n— a AAAAAAA=\n", "control character"),
        ("text\n\n— a+b AAAAAAA=\n", "bad key name"),
    ],
)
def test_malformed_notes_are_refused_with_a_reason(note: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        parse_note(note)


def test_huge_and_non_utf8_notes_are_refused() -> None:
    with pytest.raises(NoteError, match="at most"):
        parse_note(b"x" * (2 << 20))
    with pytest.raises(NoteError, match="not UTF-8"):
        parse_note(b"\xff\xfe\n\n")
    many = "t\n\n" + "— a AAAAAAA=\n" * 65
    with pytest.raises(NoteError, match="at most 64"):
        parse_note(many)


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        ("nonsense", "not a verifier key"),
        ("a+zz+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "8 hex digits"),
        ("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "does not match"),
        ("example.com/foo+530d903a+AQID", "32-byte"),
        ("bad name+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "without spaces"),
    ],
)
def test_malformed_vkeys_are_refused(vkey: str, message: str) -> None:
    with pytest.raises(NoteKeyError, match=message):
        VerifierKey.parse(vkey)


def test_private_key_file_round_trip_and_permissions(tmp_path: Path) -> None:
    key = generate_key("docket.test/log")
    path = tmp_path / "log.key"
    path.write_text(key.encode())
    os.chmod(path, 0o600)
    loaded = load_signer(path, alg=ALG_ED25519)
    assert loaded.key_id == key.key_id and loaded.public == key.public
    assert "PRIVATE" not in repr(loaded)
    os.chmod(path, 0o644)
    with pytest.raises(NoteKeyError, match="chmod 600"):
        load_signer(path)
    os.chmod(path, 0o600)
    with pytest.raises(NoteKeyError, match="expected a key of type"):
        load_signer(path, alg=ALG_COSIGNATURE_V1)
    path.write_text(key.encode().replace(key.key_id.hex(), "00000000"))
    with pytest.raises(NoteKeyError, match="does not match"):
        load_signer(path)
    with pytest.raises(NoteKeyError, match="cannot read"):
        load_signer(tmp_path / "missing.key")


def test_private_key_format_is_go_notes(tmp_path: Path) -> None:
    """PRIVATE+KEY+<name>+<hex id>+base64(type || 32-byte seed), as golang.org/x/mod/sumdb/note."""
    key = generate_key("docket.test/log")
    fields = key.encode().strip().split("+", 4)
    assert fields[:3] == ["PRIVATE", "KEY", "docket.test/log"]
    assert fields[3] == key.key_id.hex()
    raw = base64.b64decode(fields[4])
    assert raw[0] == 1 and len(raw) == 33
    assert SignerKey.parse(key.encode()).public == key.public


def test_load_verifier_takes_a_vkey_or_a_file(tmp_path: Path) -> None:
    assert load_verifier(C2SP_VKEY).vkey() == C2SP_VKEY
    f = tmp_path / "log.pub"
    f.write_text(C2SP_VKEY + "\n")
    assert load_verifier(str(f)).vkey() == C2SP_VKEY
    with pytest.raises(NoteKeyError):
        load_verifier(str(tmp_path / "nope.pub"))
