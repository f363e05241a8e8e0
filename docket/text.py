"""One text policy for everything people type and everything Docket prints.

Free text (reasons, questions, grounds, names) is *stored* only if it cannot lie on screen:
no C0/C1 control characters (a line break only where the field is multi-line), no bidi
embeddings, overrides or isolates (U+202A–U+202E, U+2066–U+2069: "Trojan Source"), and no
invisible format characters that hide or fake content (zero-width space, BOM, Hangul
fillers, tag characters, ...). What scripts need stays: every letter and mark of
Vietnamese, Arabic, Hebrew, Devanagari..., the joiners ZWJ/ZWNJ (Persian, Indic scripts,
emoji) and the directional marks LRM/RLM/ALM (they cannot reorder letters).

Everything Docket *prints* goes through one of the renderers below, so even a value that
predates this policy, or one from a log that was tampered with, shows as visible escapes:
`terminal` (CLIs), `markdown_cell`/`markdown_text` (the Temporal UI's details, markdown
reports), `csv_cell` (spreadsheets: no formulas), `html_text` (the HTML report).

The character sets are explicit code point ranges, not `unicodedata.category`, so the verdict
on a string never changes with the Python (Unicode) version a worker runs: workflow code
validates with this module, and replay must decide the same way years later.
Pure and dependency-free (safe in Temporal's workflow sandbox; the audit tools use it too).
"""

from __future__ import annotations

import html
import re
import unicodedata

__all__ = [
    "UnsafeText",
    "check_text",
    "csv_cell",
    "escape_unsafe",
    "find_unsafe",
    "html_text",
    "markdown_cell",
    "markdown_text",
    "terminal",
]

# Characters refused in stored text and escaped in printed text (besides \t and \n, which the
# multi-line fields keep). Ranges are inclusive.
_UNSAFE_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0000, 0x001F, "control character"),
    (0x007F, 0x009F, "control character"),  # DEL and the C1 set (U+009B: 8-bit CSI)
    (0x00AD, 0x00AD, "invisible format character"),  # soft hyphen
    (0x034F, 0x034F, "invisible format character"),  # combining grapheme joiner
    (0x115F, 0x1160, "invisible filler"),  # Hangul choseong/jungseong fillers
    (0x17B4, 0x17B5, "invisible format character"),
    (0x180E, 0x180E, "invisible format character"),  # Mongolian vowel separator
    (0x200B, 0x200B, "invisible format character"),  # zero-width space
    (0x2028, 0x2029, "line/paragraph separator"),
    (0x202A, 0x202E, "bidi embedding/override"),
    (0x2060, 0x2064, "invisible format character"),  # word joiner, invisible operators
    (0x2066, 0x2069, "bidi isolate"),
    (0x206A, 0x206F, "deprecated format character"),
    (0x3164, 0x3164, "invisible filler"),  # Hangul filler
    (0xD800, 0xDFFF, "lone surrogate"),
    (0xFEFF, 0xFEFF, "invisible format character"),  # BOM / zero-width no-break space
    (0xFFA0, 0xFFA0, "invisible filler"),  # halfwidth Hangul filler
    (0xFFF9, 0xFFFB, "interlinear annotation"),
    (0x1D173, 0x1D17A, "invisible format character"),  # musical formatting
    (0xE0000, 0xE007F, "tag character"),
)

_CLASS = "".join(
    f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi, _ in _UNSAFE_RANGES
)
_UNSAFE = re.compile(f"[{_CLASS}]")
# The same set without \t and \n: what a multi-line field may not hold.
_UNSAFE_MULTILINE = re.compile(f"(?![\\t\\n])[{_CLASS}]")
# Markdown's inline syntax (emphasis, code, links, HTML, table cells), escaped with a backslash
# where text lands in markdown. Values never start a line there, so `#`, `-`, `+` stay as typed.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")
_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class UnsafeText(ValueError):
    """Text holding a character that could make it display differently from what is stored."""

    def __init__(self, char: str, index: int, kind: str, *, multiline: bool = False) -> None:
        self.char = char
        self.index = index
        self.kind = kind
        allowed = " (line breaks and tabs are fine)" if multiline else ""
        super().__init__(
            f"contains {_describe(char)} ({kind}) at position {index}: such characters make "
            f"text display differently from what is stored; remove it{allowed}"
        )


def _describe(char: str) -> str:
    code = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    return f"{code} {name}" if name else code


def _kind(char: str) -> str:
    point = ord(char)
    for lo, hi, kind in _UNSAFE_RANGES:
        if lo <= point <= hi:
            return kind
    return "character"


def find_unsafe(value: str, *, multiline: bool = False) -> tuple[int, str] | None:
    """(index, char) of the first character the policy refuses, or None."""
    match = (_UNSAFE_MULTILINE if multiline else _UNSAFE).search(value)
    return (match.start(), match.group()) if match else None


def check_text(value: str, *, multiline: bool = False) -> str:
    """`value` unchanged if it obeys the policy, else UnsafeText naming the character.

    `multiline`: tabs and line feeds are allowed (reasons, statements of reasons); a carriage
    return never is (it rewrites a terminal line)."""
    found = find_unsafe(value, multiline=multiline)
    if found is not None:
        index, char = found
        raise UnsafeText(char, index, _kind(char), multiline=multiline)
    return value


def _escape(match: re.Match[str]) -> str:
    point = ord(match.group())
    if point == 0x0A:
        return "\\n"
    if point == 0x09:
        return "\\t"
    if point == 0x0D:
        return "\\r"
    if point <= 0xFF:
        return f"\\x{point:02x}"
    return f"\\u{point:04x}" if point <= 0xFFFF else f"\\U{point:08x}"


def escape_unsafe(value: str, *, keep_newlines: bool = False) -> str:
    """Every refused character as a visible escape (`\\x9b`, `\\u202e`, `\\n`...)."""
    pattern = _UNSAFE_MULTILINE if keep_newlines else _UNSAFE
    return pattern.sub(_escape, value)


def terminal(value: object, *, keep_newlines: bool = False) -> str:
    """Safe to write to a terminal: no escape sequences, no bidi tricks, and (unless
    `keep_newlines`) one line, so a value can never fake another row of output."""
    return escape_unsafe(str(value), keep_newlines=keep_newlines)


def markdown_text(value: object) -> str:
    """Inline markdown that shows `value` literally (no markup, no HTML, one line)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", escape_unsafe(str(value)))


def markdown_cell(value: object) -> str:
    """A markdown table cell: `markdown_text` (which escapes `|` and line breaks too)."""
    text = markdown_text(value)
    return text if text.strip() else "-"


def csv_cell(value: object) -> str:
    """A CSV value a spreadsheet shows as text: a leading `= + - @`, tab or CR would start a
    formula (CSV injection), so it gets a leading apostrophe; refused characters are escaped.
    Plain numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return str(value)
    text = str(value)
    if text.startswith(_CSV_FORMULA_START) and not _is_number(text):
        text = "'" + text
    return escape_unsafe(text)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def html_text(value: object) -> str:
    """Text for HTML (element content or a quoted attribute)."""
    return html.escape(escape_unsafe(str(value)), quote=True)
