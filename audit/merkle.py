"""RFC 6962 / RFC 9162 Merkle trees: hashing, proofs and their verification (pure; stdlib only).

    leaf hash  = SHA-256(0x00 || leaf bytes)
    node hash  = SHA-256(0x01 || left || right)
    MTH({})    = SHA-256("")
    MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n

Proofs are generated from a :class:`NodeSource`: anything that returns the hash of a complete,
aligned subtree (``level`` L, ``index`` i covers leaves ``[i * 2**L, (i + 1) * 2**L)``). The
in-memory :class:`MemoryTree` is one; ``audit.checkpoint_store.TreeStore`` keeps the same levels
on disk. Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 and never needs the tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryTree",
    "NodeSource",
    "ProofError",
    "RootBuilder",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion",
    "subtree_hash",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
# A proof for a tree of at most 2**64 leaves has at most 64 (inclusion) or 2 * 64 (consistency)
# hashes: anything longer is refused before any work is done.
MAX_TREE_SIZE = 1 << 64
MAX_PROOF_HASHES = 128

_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A proof does not verify, or its parameters are impossible."""


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


class NodeSource(Protocol):
    """Hashes of complete, aligned subtrees of one append-only tree."""

    def node(self, level: int, index: int) -> bytes:
        """The hash of leaves ``[index << level, (index + 1) << level)`` (all present)."""
        ...


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_hash(source: NodeSource, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a non-empty range, from complete aligned nodes."""
    width = end - start
    if width <= 0:
        raise ValueError(f"empty range [{start}, {end})")
    if width & (width - 1) == 0 and start % width == 0:
        return source.node(width.bit_length() - 1, start // width)
    k = _largest_power_of_two_below(width)
    return node_hash(subtree_hash(source, start, start + k), subtree_hash(source, start + k, end))


def tree_root(source: NodeSource, size: int) -> bytes:
    """MTH(D[0:size]); the empty tree's root for size 0."""
    return EMPTY_ROOT if size == 0 else subtree_hash(source, 0, size)


def inclusion_proof(source: NodeSource, index: int, size: int) -> list[bytes]:
    """RFC 9162 PATH(index, D[0:size]), ordered from the leaf's sibling up to the root."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    top_down: list[bytes] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if m < k:
            top_down.append(subtree_hash(source, start + k, end))
            end = start + k
        else:
            top_down.append(subtree_hash(source, start, start + k))
            start += k
            m -= k
    top_down.reverse()
    return top_down


def consistency_proof(source: NodeSource, old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 PROOF(old_size, D[0:new_size]); empty when old_size is 0 or equals new_size."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    top_down: list[bytes] = []
    start, end, m, whole = 0, new_size, old_size, True
    while m != end - start:
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            top_down.append(subtree_hash(source, start + k, end))
            end = start + k
        else:
            top_down.append(subtree_hash(source, start, start + k))
            start += k
            m -= k
            whole = False
    top_down.reverse()
    return top_down if whole else [subtree_hash(source, start, end), *top_down]


def _check_hashes(name: str, hashes: Sequence[bytes]) -> None:
    if len(hashes) > MAX_PROOF_HASHES:
        raise ProofError(f"{name} has {len(hashes)} hashes; at most {MAX_PROOF_HASHES} possible")
    for i, h in enumerate(hashes):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ProofError(f"{name}[{i}] is not a {HASH_SIZE}-byte hash")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 2.1.3.2); raises ProofError if the proof
    has the wrong length for (index, size)."""
    if not 0 <= index < size < MAX_TREE_SIZE:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hashes("inclusion proof", proof)
    if len(leaf) != HASH_SIZE:
        raise ProofError("leaf hash is not 32 bytes")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofError unless ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of
    ``size`` leaves whose root is ``root``."""
    _check_hashes("root", [root])
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(
            f"inclusion proof for leaf {index} does not lead to the root of size {size}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ProofError unless ``proof`` shows that the tree (old_size, old_root) is a prefix of
    the tree (new_size, new_root) (RFC 9162 2.1.4.2)."""
    if not 0 <= old_size <= new_size < MAX_TREE_SIZE:
        raise ProofError(f"a tree of size {old_size} cannot grow into one of size {new_size}")
    _check_hashes("consistency proof", proof)
    if old_size == 0 and old_root != EMPTY_ROOT:
        raise ProofError("the root of the empty tree must be SHA-256 of the empty string")
    if old_size == new_size:
        if proof:
            raise ProofError("sizes are equal but the consistency proof is not empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same size {old_size}")
        return
    _check_hashes("roots", [old_root, new_root])
    # From the empty tree (C2SP tlog-witness): every tree extends it and the proof is empty.
    if old_size == 0:
        if proof:
            raise ProofError("a consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError(f"consistency proof does not lead to the old root (size {old_size})")
    if sr != new_root:
        raise ProofError(f"consistency proof does not lead to the new root (size {new_size})")


class RootBuilder:
    """Streaming root of a growing tree in O(log n) memory (a compact range from leaf 0)."""

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing
        self.size = 0

    def add(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        level, h = 0, leaf
        stack = self._stack
        while stack and stack[-1][0] == level:
            h = node_hash(stack.pop()[1], h)
            level += 1
        stack.append((level, h))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        r = self._stack[-1][1]
        for _, h in reversed(self._stack[:-1]):
            r = node_hash(h, r)
        return r


class MemoryTree:
    """All levels of a tree in memory: for tests, proofs over small trees, and known answers."""

    def __init__(self, leaves: Iterable[bytes] = (), *, hashed: bool = False) -> None:
        self.levels: list[list[bytes]] = [[]]
        self.extend(leaves, hashed=hashed)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def extend(self, leaves: Iterable[bytes], *, hashed: bool = False) -> None:
        for data in leaves:
            h = data if hashed else leaf_hash(data)
            level = 0
            while True:
                nodes = self.levels[level]
                nodes.append(h)
                if len(nodes) % 2:
                    break
                h = node_hash(nodes[-2], nodes[-1])
                level += 1
                if len(self.levels) == level:
                    self.levels.append([])

    def node(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        return tree_root(self, self.size if size is None else size)
