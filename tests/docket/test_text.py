"""The one text policy: what may be stored, and how every renderer shows what may not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docket.text import (
    UnsafeText,
    check_text,
    csv_cell,
    find_unsafe,
    html_text,
    markdown_cell,
    terminal,
)

REAL_TEXT = [
    "Tài khoản giả mạo lãnh đạo Đảng và Nhà nước, đăng tin sai sự thật",  # Vietnamese
    "Nguyễn Văn An — Bộ Thông tin và Truyền thông",
    "هذا المحتوى يحرض على العنف ضد الصحفيين",  # Arabic
    "התוכן הזה מפר את חוק הגנת הפרטיות",  # Hebrew
    "می\u200cخواهم",  # Persian with ZWNJ
    "कृपया इस सामग्री को हटाएँ",  # Devanagari
    "👩\u200d💻 emoji with ZWJ",
    "mixed \u200fRLM and \u200eLRM marks",
]


@pytest.mark.parametrize("text", REAL_TEXT)
def test_real_scripts_are_kept(text: str) -> None:
    assert check_text(text) == text
    assert check_text(text, multiline=True) == text
    assert terminal(text) == text


@pytest.mark.parametrize(
    ("char", "kind"),
    [
        ("\x9b", "control character"),  # 8-bit CSI
        ("\x1b", "control character"),
        ("\r", "control character"),
        ("\u202e", "bidi embedding/override"),
        ("\u202a", "bidi embedding/override"),
        ("\u2066", "bidi isolate"),
        ("\u2069", "bidi isolate"),
        ("\u200b", "invisible format character"),
        ("\ufeff", "invisible format character"),
        ("\u2028", "line/paragraph separator"),
        ("\U000e0041", "tag character"),
        ("\u3164", "invisible filler"),
    ],
)
def test_misleading_characters_are_refused_with_their_name(char: str, kind: str) -> None:
    with pytest.raises(UnsafeText) as info:
        check_text(f"Because{char} I say so", multiline=True)
    assert info.value.index == 7
    assert kind in str(info.value)
    assert f"U+{ord(char):04X}" in str(info.value)


def test_line_breaks_only_where_the_field_is_multiline() -> None:
    assert check_text("line one\n\tline two", multiline=True) == "line one\n\tline two"
    with pytest.raises(UnsafeText):
        check_text("line one\nline two")


def test_terminal_output_is_one_line_without_escape_sequences() -> None:
    forged = "Received\n#9  2026-12-03  withdraw  awaiting_ack -> closed  tran.thi.binh"
    shown = terminal(forged)
    assert "\n" not in shown
    assert shown.startswith("Received\\n#9")
    assert terminal("\x9b31mred\u202eevil") == "\\x9b31mred\\u202eevil"
    assert terminal("a\nb", keep_newlines=True) == "a\nb"


def test_markdown_cell_cannot_break_the_table_or_inject_markup() -> None:
    cell = markdown_cell("a | b\nc <img src=x> *bold* [link](http://x)")
    assert "|" not in cell.replace("\\|", "")
    assert "\n" not in cell
    assert "<" not in cell.replace("\\<", "")
    assert cell.count("\\*") == 2
    assert markdown_cell("") == "-"


@pytest.mark.parametrize("formula", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\r=1"])
def test_csv_cell_never_starts_a_formula(formula: str) -> None:
    cell = csv_cell(formula)
    assert cell.startswith("'")


def test_csv_keeps_numbers_and_plain_text() -> None:
    assert csv_cell(-5) == "-5"
    assert csv_cell("-5.5") == "-5.5"
    assert csv_cell("Điều 5") == "Điều 5"
    assert csv_cell(None) == ""


def test_html_escapes_markup_and_controls() -> None:
    assert html_text('<script>"x"</script>\u202e') == (
        "&lt;script&gt;&quot;x&quot;&lt;/script&gt;\\u202e"
    )


@given(st.text())
def test_renderers_never_emit_a_refused_character(text: str) -> None:
    for rendered in (terminal(text), markdown_cell(text), csv_cell(text), html_text(text)):
        assert find_unsafe(rendered) is None
