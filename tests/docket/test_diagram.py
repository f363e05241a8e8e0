"""docs/lifecycle.md is generated from the machine; a stale file fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from docket import diagram
from docket.lifecycle import GUARDS, TRANSITIONS, TRIGGERS, Outcome, State


def test_committed_doc_matches_the_machine() -> None:
    committed = diagram.DOC.read_text(encoding="utf-8")
    assert committed == diagram.render(), (
        "docs/lifecycle.md is stale: run `python -m docket.diagram` and commit the result"
    )


def test_check_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert diagram.main(["--check"]) == 0
    stale = tmp_path / "lifecycle.md"
    stale.write_text(diagram.render().replace("withdraw", "retract", 1), encoding="utf-8")
    monkeypatch.setattr(diagram, "DOC", stale)
    assert diagram.main(["--check"]) == 1
    assert diagram.main([]) == 0
    assert stale.read_text(encoding="utf-8") == diagram.render()


def test_mermaid_mentions_every_state_and_trigger() -> None:
    text = diagram.mermaid()
    assert text.startswith("stateDiagram-v2\n    [*] --> pending_approval: submit")
    edges = re.findall(r"^    (\w+) --> (\w+): (\w+)", text, re.M)
    assert {s for edge in edges for s in edge[:2]} == {s.value for s in State}
    assert {edge[2] for edge in edges} == set(TRIGGERS)
    assert "    closed --> [*]" in text
    # one edge per (row, source)
    assert len(edges) == sum(len(row.sources) for row in TRANSITIONS)


def test_document_lists_guards_outcomes_and_rows() -> None:
    text = diagram.render()
    for guard in GUARDS.values():
        assert f"- `{guard.name}`: {guard.description}" in text
    for outcome in Outcome:
        assert f"`{outcome.value}`" in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(TRANSITIONS)
    assert "```mermaid\nstateDiagram-v2" in text
