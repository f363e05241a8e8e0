"""Reference data as files: the shipped set loads; a broken set lists every problem at once."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from docket.reference import (
    DEFAULT_DIR,
    ReferenceError,
    default_reference,
    format_loc,
    load_reference,
    parse_duration,
)


def test_shipped_reference_loads() -> None:
    ref = load_reference(DEFAULT_DIR)
    assert set(ref.authorities) >= {"mic", "mst", "mps-a05", "ie-cnam"}
    assert set(ref.platforms) == {"facebook", "youtube", "tiktok"}
    assert set(ref.sla_policies) >= {
        "VN-C38-2016",
        "VN-D147-2024",
        "VN-CSL-2025-EMERGENCY",
        "EU-DSA-ART9",
    }
    assert ref.authorities["mic"].name == "Bộ Thông tin và Truyền thông"
    assert ref.authorities["mic"].valid_until == date(2025, 2, 28)
    assert ref.authorities["mic"].successor == "mst"
    assert ref.legal_bases["vn-d72-2013"].replaced_by == "vn-d147-2024"


def test_shipped_sla_policies_match_the_rules() -> None:
    policies = default_reference().sla_policies
    c38 = policies["VN-C38-2016"]
    assert (c38.respond_within, c38.second_notice_within) == (timedelta(hours=24),) * 2
    assert policies["VN-D147-2024"].respond_within == timedelta(hours=24)
    assert policies["VN-D147-2024"].second_notice_within is None
    emergency = policies["VN-CSL-2025-EMERGENCY"]
    assert emergency.respond_within == timedelta(hours=6)
    assert emergency.emergency
    dsa = policies["EU-DSA-ART9"]
    assert not dsa.has_clock
    assert dsa.appeal_window >= timedelta(days=183)  # DSA Art. 20: at least six months


def test_government_criticism_is_always_reported() -> None:
    cats = default_reference().categories
    assert cats["government_criticism"].always_reported
    assert cats["impersonation"].dsa_keyword == "KEYWORD_IMPERSONATION_ACCOUNT_HIJACKING"


def test_platforms_hold_no_secrets() -> None:
    for platform in default_reference().platforms.values():
        assert platform.credential_env.startswith("DOCKET_SECRET_")
        dumped = platform.model_dump_json()
        assert "secret" not in dumped.lower().replace("docket_secret_", "")


def test_actor_lookup() -> None:
    ref = default_reference()
    actor = ref.actor("tran.thi.binh")
    assert actor.roles == ("approver",)
    assert actor.name == "Trần Thị Bình"
    with pytest.raises(KeyError, match="unknown actor 'nobody'; known: "):
        ref.actor("nobody")


def test_environment_variable_picks_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(DEFAULT_DIR, tmp_path / "ref")
    monkeypatch.setenv("DOCKET_REFERENCE_DIR", str(tmp_path / "ref"))
    assert load_reference().source == str(tmp_path / "ref")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("90s", 90), ("30m", 1800), (" 24h ", 86400), ("7d", 604800), (45, 45), (1.5, 1.5)],
)
def test_parse_duration(value: object, expected: float) -> None:
    assert parse_duration(value) == timedelta(seconds=expected)


@pytest.mark.parametrize("value", ["24", "1w", "-5m", "", True, None])
def test_parse_duration_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="expected a duration like"):
        parse_duration(value)


def test_format_loc() -> None:
    assert format_loc(("items", 0, "url")) == "items[0].url"
    assert format_loc(()) == "(top level)"


# --- a broken directory --------------------------------------------------------------------


@pytest.fixture
def ref_dir(tmp_path: Path) -> Path:
    target = tmp_path / "ref"
    shutil.copytree(DEFAULT_DIR, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _problems(directory: Path) -> list[str]:
    with pytest.raises(ReferenceError) as info:
        load_reference(directory)
    assert str(info.value).startswith("invalid reference data:\n  ")
    return info.value.problems


def test_bad_field_names_file_entry_and_field(ref_dir: Path) -> None:
    _edit(ref_dir / "sla_policies.toml", 'respond_within = "6h"', 'respond_within = "6 hours"')
    assert _problems(ref_dir) == [
        "sla_policies.toml: policy[2].respond_within: Value error, expected a duration like "
        "'90s', '30m', '24h' or '7d', got '6 hours'"
    ]


def test_all_problems_at_once(ref_dir: Path) -> None:
    # a bad field
    _edit(ref_dir / "authorities.toml", 'country = "IE"', 'country = "Ireland"')
    # a broken cross reference
    _edit(ref_dir / "legal_bases.toml", 'replaced_by = "vn-d147-2024"', 'replaced_by = "vn-d999"')
    # a duplicate id
    text = (ref_dir / "categories.toml").read_text(encoding="utf-8")
    dup = text[text.index('[[category]]\nid = "privacy"') :].split("\n\n")[0]
    (ref_dir / "categories.toml").write_text(text + "\n" + dup + "\n", encoding="utf-8")
    # bad TOML
    (ref_dir / "actors.toml").write_text('[[actor]]\nid = "x\n', encoding="utf-8")
    # an unknown field and a policy naming an unknown legal basis
    _edit(ref_dir / "platforms.toml", "api = false", "api = false\nregion = 'sg'")
    _edit(ref_dir / "sla_policies.toml", 'legal_basis = "eu-dsa-2022"', 'legal_basis = "eu-x"')
    problems = _problems(ref_dir)
    assert "authorities.toml: authority[3].country: String should match pattern '^[A-Z]{2}$'" in (
        problems
    )
    assert "platforms.toml: platform[2].region: Extra inputs are not permitted" in problems
    assert "categories.toml: category[7].id: 'privacy' is defined twice" in problems
    assert any(p.startswith(f"{ref_dir / 'actors.toml'}: not valid TOML: ") for p in problems)
    assert (
        "sla_policies.toml: policy 'EU-DSA-ART9'.legal_basis: unknown legal basis 'eu-x'"
        in problems
    )
    assert (
        "legal_bases.toml: legal_basis 'vn-d72-2013'.replaced_by: unknown legal basis 'vn-d999'"
        in problems
    )
    assert len(problems) == 6


def test_successor_must_exist(ref_dir: Path) -> None:
    _edit(ref_dir / "authorities.toml", 'successor = "mst"', 'successor = "mist"')
    assert _problems(ref_dir) == [
        "authorities.toml: authority 'mic'.successor: unknown authority 'mist'"
    ]


def test_second_notice_needs_a_first_clock(ref_dir: Path) -> None:
    _edit(
        ref_dir / "sla_policies.toml",
        'appeal_window = "183d"',
        'appeal_window = "183d"\nsecond_notice_within = "24h"',
    )
    assert _problems(ref_dir) == [
        "sla_policies.toml: policy 'EU-DSA-ART9': second_notice_within needs respond_within"
    ]


def test_missing_file_and_wrong_table(ref_dir: Path) -> None:
    (ref_dir / "platforms.toml").unlink()
    (ref_dir / "actors.toml").write_text('[[person]]\nid = "x"\n', encoding="utf-8")
    assert _problems(ref_dir) == [
        f"{ref_dir / 'platforms.toml'}: file is missing",
        f"{ref_dir / 'actors.toml'}: unknown tables ['person']; expected [[actor]] entries",
        f"{ref_dir / 'actors.toml'}: expected one or more [[actor]] entries",
    ]
