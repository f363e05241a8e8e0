"""An independent implementation verifies Docket's proofs and checkpoint signatures.

The verifier is sigstore-python (PyPI `sigstore`, pinned in the test extras), the Sigstore
project's client: its RFC 6962 inclusion-proof verifier (`sigstore._internal.merkle`, derived
from Google Trillian's) and its signed-note checkpoint parser and verifier
(`sigstore._internal.rekor.checkpoint`, the format Rekor shares with C2SP). These are internal
modules of sigstore-python: a change there breaks this test loudly (an import error), never
silently.

Consistency proofs are NOT checked here by an independent implementation: neither
sigstore-python nor sigstore-js verifies them, and no maintained Python or npm implementation
of RFC 9162 consistency proofs was found (pymerkle 7 uses its own proof layout, which differs
from RFC 9162's whenever the old size fills a left subtree exactly). They are checked against
the transparency-dev reference vectors instead (tests/audit/test_merkle.py: every consistency
probe, and our generated proofs equal the reference happy-path proofs byte for byte).
"""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from audit_helpers import write_log
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sigstore._internal.merkle import verify_merkle_inclusion
from sigstore._internal.rekor.checkpoint import SignedCheckpoint as SigstoreCheckpoint
from sigstore._internal.trust import Keyring, RekorKeyring
from sigstore._utils import KeyID
from sigstore.errors import VerificationError
from sigstore_models.common.v1 import PublicKey, PublicKeyDetails

from audit.bundle import build_bundle
from audit.checkpoint import CheckpointConfig, Source, make_checkpoint, open_checkpoint
from audit.checkpoint_store import TreeStore
from audit.merkle import inclusion_proof
from audit.note import SignerKey, generate_key


def _keyring(key: SignerKey) -> RekorKeyring:
    der = Ed25519PublicKey.from_public_bytes(key.public).public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )
    # the protobuf model takes bytes in their JSON (base64) form
    public = PublicKey(raw_bytes=base64.b64encode(der), key_details=PublicKeyDetails.PKIX_ED25519)
    return RekorKeyring(Keyring([public]))


def _sigstore_entry(line: bytes, index: int, size: int, root: bytes, proof: list[bytes]) -> Any:
    """The parts of a Rekor TransparencyLogEntry that sigstore's verifier reads."""
    return SimpleNamespace(
        _inner=SimpleNamespace(
            canonicalized_body=line,
            inclusion_proof=SimpleNamespace(
                log_index=index, tree_size=size, root_hash=root, hashes=proof, checkpoint=None
            ),
        )
    )


@pytest.fixture
def log(tmp_path: Path) -> tuple[CheckpointConfig, SignerKey]:
    write_log(tmp_path / "a", {"req-mst-1": 9, "req-mst-2": 4}, host="host-a")
    write_log(tmp_path / "b", {"req-mst-3": 8}, host="host-b")
    config = CheckpointConfig(
        tmp_path / "ck", (Source("a", tmp_path / "a"), Source("b", tmp_path / "b"))
    )
    key = generate_key("docket.test/audit")
    make_checkpoint(config, key)
    return config, key


def test_sigstore_verifies_the_checkpoint_signature(
    log: tuple[CheckpointConfig, SignerKey],
) -> None:
    config, key = log
    text = config.checkpoint_path.read_text()
    parsed = SigstoreCheckpoint.from_text(text)
    assert parsed.checkpoint.origin == "docket.test/audit"
    assert parsed.checkpoint.log_size == 21
    ours = open_checkpoint(text, key.verifier()).checkpoint
    assert parsed.checkpoint.log_hash == ours.root.hex()
    # the signature line's 4-byte key hint is the C2SP key ID
    parsed.signed_note.verify(_keyring(key), KeyID(key.key_id))
    with pytest.raises(VerificationError):
        parsed.signed_note.verify(_keyring(generate_key("docket.test/audit")), KeyID(key.key_id))
    forged = SigstoreCheckpoint.from_text(text.replace("\n21\n", "\n22\n"))
    with pytest.raises(VerificationError):
        forged.signed_note.verify(_keyring(key), KeyID(key.key_id))


def test_sigstore_verifies_every_bundle_inclusion_proof(
    log: tuple[CheckpointConfig, SignerKey],
) -> None:
    config, key = log
    checked = 0
    for request in ("req-mst-1", "req-mst-2", "req-mst-3"):
        bundle = build_bundle(request, config, key.verifier())
        cp = open_checkpoint(bundle["checkpoint"], key.verifier()).checkpoint
        for item in bundle["entries"]:
            proof = [base64.b64decode(h) for h in item["proof"]]
            line = item["line"].encode()
            verify_merkle_inclusion(_sigstore_entry(line, item["index"], cp.size, cp.root, proof))
            with pytest.raises(VerificationError):
                verify_merkle_inclusion(
                    _sigstore_entry(line + b" ", item["index"], cp.size, cp.root, proof)
                )
            checked += 1
    assert checked == 21


def test_sigstore_checks_every_proof_at_every_size(tmp_path: Path) -> None:
    """Every (leaf, tree size) pair of a 40-entry log, as the log grew."""
    write_log(tmp_path / "a", {"req-mst-1": 40}, host="host-a")
    config = CheckpointConfig(tmp_path / "ck", (Source("a", tmp_path / "a"),))
    make_checkpoint(config, generate_key("docket.test/audit"))
    lines = next((tmp_path / "a").glob("*.jsonl")).read_bytes().splitlines()
    with TreeStore(config.tree_dir) as store:
        from audit.merkle import tree_root

        for size in range(1, 41):
            root = tree_root(store, size)
            for index in range(size):
                proof = inclusion_proof(store, index, size)
                verify_merkle_inclusion(_sigstore_entry(lines[index], index, size, root, proof))
