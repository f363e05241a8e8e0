"""The pinned canonical JSON form of an audit entry body (pure; stdlib only; sandbox-safe).

``canonical(value)`` is ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
allow_nan=False)`` encoded as UTF-8, restricted to the values on which that output equals
RFC 8785 (JCS):

- no floats at all (JCS number formatting differs from Python's ``repr``; use ints or strings);
- ints within +/- 2**53 (I-JSON safe range; beyond it JCS would round through a double);
- object keys must be ``str`` and ASCII (JCS sorts by UTF-16 code units, Python by code points;
  the orders agree on ASCII);
- strings must be valid Unicode (no lone surrogates);
- only dict, list/tuple, str, int, bool and None;
- containers nested at most :data:`MAX_NESTING` deep (the same limit ``audit verify`` applies
  when it reads a line back, so what one side accepts the other does too).

On those values Python escapes exactly what JCS escapes (``"``, ``\\``, and U+0000..U+001F, with
the short forms ``\\b \\t \\n \\f \\r`` and lowercase ``\\u00xx`` otherwise) and leaves everything
else, including U+2028/U+2029 and U+007F, literal.
"""

from __future__ import annotations

import json
from typing import Any

MAX_SAFE_INT = 2**53
#: The deepest container nesting an entry body may have: the body object is level 1, so
#: ``{"docket": {"data": {...}}}`` is 3 deep. Real entries are about 5 deep; the limit stops
#: hostile input. It is the depth orjson serializes at most, so ``audit verify`` enforces the
#: very same limit for free when it re-serializes a line (tests pin the two together).
MAX_NESTING = 254

__all__ = [
    "MAX_NESTING",
    "MAX_SAFE_INT",
    "CanonicalError",
    "canonical",
    "check_canonicalizable",
    "in_subset",
    "nesting_depth",
]


class CanonicalError(ValueError):
    """A value outside the canonicalizable subset; the message names the JSON path."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def in_subset(value: Any) -> bool:
    """True if ``value`` is in the pinned subset: the fast check every entry takes (in the
    workflow to hash it, in the writer to re-check the hash). ``_check`` finds the path of
    what is wrong, only when this says something is. Walks one nesting level at a time, so the
    depth limit costs nothing; gives up (False) after ``budget`` values, so a value sharing
    sub-containers many times over falls to ``_check`` instead of taking forever."""
    level = [value]
    depth = 0
    budget = 1_000_000
    while level:
        depth += 1
        budget -= len(level)
        if budget < 0:
            return False
        below: list[Any] = []
        extend = below.extend
        for v in level:
            t = type(v)
            if t is str:
                if not v.isascii():
                    try:
                        v.encode("utf-8")
                    except UnicodeEncodeError:
                        return False
            elif t is dict:
                if depth > MAX_NESTING:
                    return False
                for k in v:
                    if type(k) is not str or not k.isascii():
                        return False
                extend(v.values())
            elif t is list or t is tuple:
                if depth > MAX_NESTING:
                    return False
                extend(v)
            elif t is int:
                if not -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
                    return False
            elif not (v is None or v is True or v is False):
                return False
        level = below
    return True


def nesting_depth(value: Any, *, stop_after: int = MAX_NESTING + 1) -> int:
    """How deeply containers nest in ``value`` (a scalar: 0, ``{}``: 1, ``{"a": []}``: 2),
    counted up to ``stop_after`` (so a cyclic value ends too)."""
    level = [value]
    depth = 0
    while depth < stop_after:
        below: list[Any] = []
        found = False
        for v in level:
            t = type(v)
            if t is dict:
                found = True
                below.extend(v.values())
            elif t is list or t is tuple:
                found = True
                below.extend(v)
        if not found:
            break
        depth += 1
        level = below
    return depth


def _check_slowly(value: Any, path: str) -> None:
    """Raise CanonicalError naming the path of the first value outside the subset."""
    _check(value, [path])


def _check(value: Any, trail: list[str | int]) -> None:
    # `trail` holds the keys down to `value`; the path string is built only for an error.
    # bool before int: bool is a subclass of int.
    if value is None or value is True or value is False:
        return
    t = type(value)
    if t is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _error(trail, "string is not valid Unicode (lone surrogate)") from None
        return
    if t is int:
        if -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            return
        raise _error(trail, f"integer {value} outside +/-2**53")
    if (t is dict or t is list or t is tuple) and len(trail) > MAX_NESTING:
        raise _error(trail, f"containers nested deeper than {MAX_NESTING} levels")
    if t is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise _error(trail, f"object key {k!r} is not a string")
            if not k.isascii():
                raise _error(trail, f"object key {k!r} is not ASCII")
            trail.append(k)
            _check(v, trail)
            trail.pop()
        return
    if t is list or t is tuple:
        for i, v in enumerate(value):
            trail.append(i)
            _check(v, trail)
            trail.pop()
        return
    if isinstance(value, float):
        raise _error(trail, f"float {value!r} not allowed (use an int or a string)")
    raise _error(trail, f"type {type(value).__name__} not allowed")


def _error(trail: list[str | int], problem: str) -> CanonicalError:
    root = str(trail[0])
    path = root + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in trail[1:])
    return CanonicalError(path, problem)


def check_canonicalizable(value: Any, path: str = "$") -> None:
    """Raise CanonicalError (naming the path) unless ``value`` is in the pinned subset."""
    if not in_subset(value):
        _check_slowly(value, path)


def canonical(value: Any) -> bytes:
    """The canonical UTF-8 bytes of ``value`` (equal to RFC 8785 JCS on the allowed subset)."""
    if not in_subset(value):
        _check_slowly(value, "$")
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
