"""`audit report --format html`: one self-contained file that leads with charts, each with a
table and a text alternative; hostile text escaped; rendered by a real headless Chromium when
one is installed."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_audit_outputs import PERIOD, hostile_chain, removal_chain, write

from audit.html_report import CHART_IDS
from audit.report import build_report, render

ROOT = Path(__file__).resolve().parents[2]
DEMO = Path(__file__).resolve().parent / "data" / "demo"
CHROMIUM = "/usr/bin/chromium"


class Outline(HTMLParser):
    """What the report is made of: sections, figures, svgs, tables, external references."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.svgs: list[dict[str, str | None]] = []
        self.tables = 0
        self.captions = 0
        self.external: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("id"):
            self.sections.append(str(a["id"]))
        if tag == "svg":
            self.svgs.append(a)
        if tag == "table":
            self.tables += 1
        if tag == "figcaption":
            self.captions += 1
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            value = a.get(key)
            if value and not value.startswith(("#", "data:")):
                self.external.append(value)


def demo_html(tmp_path: Path) -> Path:
    out = tmp_path / "report.html"
    run = subprocess.run(
        [
            *(sys.executable, "-m", "audit", "report", "--from", "2026-12-01"),
            *("--to", "2026-12-31", "--format", "html", "-o", str(out), str(DEMO)),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == "" and run.stderr == ""
    return out


def test_the_html_report_from_a_real_log_leads_with_charts(tmp_path: Path) -> None:
    html = demo_html(tmp_path).read_text(encoding="utf-8")
    outline = Outline()
    outline.feed(html)
    assert outline.sections[: len(CHART_IDS)] == list(CHART_IDS)  # the charts come first
    assert len(outline.svgs) == len(CHART_IDS)
    for svg in outline.svgs:  # each chart has a text alternative
        assert svg.get("role") == "img" and len(svg.get("aria-label") or "") > 20
    assert outline.captions == len(CHART_IDS)
    assert outline.tables >= len(CHART_IDS)  # a table beside every chart
    assert outline.external == [] and outline.scripts == 0  # self-contained, no script
    assert "default-src 'none'" in html  # and the browser is told to fetch nothing
    assert "@media print" in html
    # the demo's numbers: 2 requests; 3 removals, all confirmed by our probes
    assert "2 requests, 9 items" in html
    assert "3 items the platforms say are gone: 3 confirmed" in html
    assert re.search(r"<text[^>]*>[^<]*facebook", html)  # chart text is text, not paths


def test_the_html_report_is_reproducible(tmp_path: Path) -> None:
    log = write(tmp_path / "log", removal_chain("req-mic-r-2026", {"a1": "confirmed"}))
    report = build_report([log], *PERIOD)
    assert render(report, "html") == render(report, "html")


def test_hostile_text_is_escaped_in_the_html_report(tmp_path: Path) -> None:
    chain = hostile_chain(
        "req-mic-html-2026", platform="<img src=x onerror=alert(1)>$\\frac{1}{2}$"
    )
    log = write(tmp_path / "log", chain)
    html = render(build_report([log], *PERIOD), "html")
    outline = Outline()
    outline.feed(html)
    assert outline.external == [] and outline.scripts == 0
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "\x9b" not in html and "\u202e" not in html
    assert "\\x9b" in html or "x9b" not in html  # escaped visibly where it appears


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="headless Chromium is not installed")
def test_chromium_renders_the_charts(tmp_path: Path) -> None:
    report = demo_html(tmp_path)
    profile = tmp_path / "profile"
    common = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    dom = subprocess.run(
        [*common, "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    outline = Outline()
    outline.feed(dom.stdout)
    assert outline.sections[: len(CHART_IDS)] == list(CHART_IDS)
    assert len(outline.svgs) == len(CHART_IDS)
    assert dom.stdout.count("<rect") + dom.stdout.count("<path") > 50  # bars drawn
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*common, "--window-size=1200,2400", f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.exists() and shot.stat().st_size > 20_000
    colours = _distinct_colours(shot)
    # white page, black text, and the charts' blue, orange and green
    assert len(colours) > 20, len(colours)
    assert {"0072b2", "e69f00", "009e73"} <= colours


def _distinct_colours(png: Path) -> set[str]:
    from PIL import Image  # shipped with matplotlib

    with Image.open(png) as im:
        rgb = im.convert("RGB")
        counts: list[tuple[int, tuple[int, int, int]]] = rgb.getcolors(maxcolors=1 << 20) or []  # type: ignore[assignment]
    return {"".join(f"{v:02x}" for v in c) for n, c in counts if n > 50}


def test_the_cli_refuses_an_unknown_format(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            *(sys.executable, "-m", "audit", "report", "--from", "2026-12-01"),
            *("--to", "2026-12-31", "--format", "xml", str(DEMO)),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 2 and "md, csv, json, html" in run.stderr
