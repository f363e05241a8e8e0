"""RFC 6962/9162 Merkle hashing and proofs: known answers from transparency-dev, properties.

The reference leaves and root hashes below are copied (data only) from
github.com/transparency-dev/merkle, testonly/constants.go and rfc6962/rfc6962_test.go, at commit
417fb0c314750d94e53942e9f92e79b6d35915db; the proof probes are that repository's testdata/
(see tests/audit/data/transparency_dev_merkle/SOURCE.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    ProofError,
    RootBuilder,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent / "data" / "transparency_dev_merkle"

LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
LEAF_HASHES = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    )
]


def _b64(values: list[str] | None) -> list[bytes]:
    return [base64.b64decode(v) for v in values or []]


def _probes(kind: str) -> list[tuple[str, dict[str, Any]]]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert len(files) > 80, f"expected the copied {kind} vectors under {VECTORS}"
    return [(str(f.relative_to(VECTORS)), json.loads(f.read_text())) for f in files]


def test_rfc6962_hasher_known_answers() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert leaf_hash(b"L123456").hex() == (
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert node_hash(b"N123", b"N456").hex() == (
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_reference_tree_roots_at_every_size() -> None:
    assert [leaf_hash(x) for x in LEAF_INPUTS] == LEAF_HASHES
    tree = MemoryTree(LEAF_INPUTS)
    builder = RootBuilder()
    assert builder.root() == ROOTS[0]
    for size in range(len(LEAF_INPUTS) + 1):
        assert tree.root(size) == ROOTS[size], size
        if size:
            builder.add(LEAF_HASHES[size - 1])
            assert builder.root() == ROOTS[size], size


@pytest.mark.parametrize(("name", "probe"), _probes("inclusion"), ids=lambda v: str(v)[:60])
def test_transparency_dev_inclusion_probes(name: str, probe: dict[str, Any]) -> None:
    args = (
        probe["leafIdx"],
        probe["treeSize"],
        base64.b64decode(probe["leafHash"] or ""),
        _b64(probe["proof"]),
        base64.b64decode(probe["root"] or ""),
    )
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize(("name", "probe"), _probes("consistency"), ids=lambda v: str(v)[:60])
def test_transparency_dev_consistency_probes(name: str, probe: dict[str, Any]) -> None:
    args = (
        probe["size1"],
        probe["size2"],
        base64.b64decode(probe["root1"] or ""),
        base64.b64decode(probe["root2"] or ""),
        _b64(probe["proof"]),
    )
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_generated_proofs_equal_the_reference_happy_paths() -> None:
    """Our proof generation reproduces every happy-path proof over the reference tree."""
    tree = MemoryTree(LEAF_INPUTS)
    checked = 0
    for _name, p in _probes("inclusion"):
        if p["wantErr"] or p["treeSize"] > 8 or base64.b64decode(p["root"]) != ROOTS[p["treeSize"]]:
            continue
        assert inclusion_proof(tree, p["leafIdx"], p["treeSize"]) == _b64(p["proof"])
        checked += 1
    for _name, p in _probes("consistency"):
        if p["wantErr"] or p["size2"] > 8 or base64.b64decode(p["root2"]) != ROOTS[p["size2"]]:
            continue
        assert consistency_proof(tree, p["size1"], p["size2"]) == _b64(p["proof"])
        checked += 1
    assert checked >= 8


def _naive_root(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 section 2.1, recursively (the reference for the properties)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(_naive_root(leaves[:k]), _naive_root(leaves[k:]))


@given(st.lists(st.binary(max_size=8), max_size=70))
def test_roots_equal_the_rfc_definition(leaves: list[bytes]) -> None:
    tree = MemoryTree(leaves)
    builder = RootBuilder()
    for leaf in leaves:
        builder.add(leaf_hash(leaf))
    assert tree.root() == builder.root() == _naive_root(leaves)


@given(st.integers(1, 140), st.data())
def test_every_generated_proof_verifies_and_a_changed_one_does_not(size: int, data: Any) -> None:
    tree = MemoryTree(i.to_bytes(4, "big") for i in range(size))
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(tree, index, size)
    verify_inclusion(index, size, tree.node(0, index), proof, tree.root())
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf_hash(b"forged"), proof, tree.root())
    if proof:
        flipped = [*proof]
        flipped[-1] = bytes([flipped[-1][0] ^ 1]) + flipped[-1][1:]
        with pytest.raises(ProofError):
            verify_inclusion(index, size, tree.node(0, index), flipped, tree.root())
    old = data.draw(st.integers(0, size))
    cproof = consistency_proof(tree, old, size)
    verify_consistency(old, size, tree.root(old), tree.root(), cproof)
    if 0 < old < size:
        with pytest.raises(ProofError):
            verify_consistency(old, size, leaf_hash(b"other"), tree.root(), cproof)
        with pytest.raises(ProofError):
            verify_consistency(old, size, tree.root(old), tree.root(), cproof[:-1])


def test_a_fork_is_not_consistent() -> None:
    """Same prefix size, one entry changed: no proof from the honest tree fits the forked one."""
    honest = MemoryTree(str(i).encode() for i in range(20))
    forked = MemoryTree(
        [*(str(i).encode() for i in range(7)), b"x", *(str(i).encode() for i in range(8, 30))]
    )
    with pytest.raises(ProofError):
        verify_consistency(20, 30, honest.root(), forked.root(), consistency_proof(forked, 20, 30))
