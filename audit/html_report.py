"""The transparency report as one self-contained HTML file that leads with charts.

Charts are drawn by matplotlib into inline SVG: the file needs no network, no script and no
font download, opens from disk, prints as vectors, and shows the same in every browser. Each
chart has its numbers in a table beside it and a text alternative (the SVG's ``<title>`` and
``aria-label``, and a caption). Every text from the log goes through ``docket.text``
(``html_text`` in HTML; ``escape_unsafe`` plus escaped ``$`` in chart labels, so a hostile
platform or outcome name cannot inject markup, mathtext or control characters).

Why matplotlib and not a JavaScript library: a JS chart library would have to be inlined from
its package into every report (hundreds of kilobytes of code the reader must trust and run),
renders only with scripts enabled, and prints through the browser's canvas; matplotlib is
already a well-kept, offline Python library whose SVG needs nothing at view time.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from docket.text import escape_unsafe, html_text

__all__ = ["CHART_IDS", "render_html"]

# Okabe-Ito: distinguishable with the common colour-vision deficiencies, and in print.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000")
_STATUS_COLOURS = {"confirmed": "#009E73", "unverified": "#E69F00", "contradicted": "#D55E00"}
CHART_IDS = (
    "requests-over-time",
    "items-over-time",
    "requests-by-platform",
    "sla",
    "time-to-effect",
    "removals",
    "appeals",
)
_SVG_START = re.compile(r"<svg\b[^>]*>")


def _label(value: Any, limit: int = 32) -> str:
    """A chart label: refused characters as visible escapes, no mathtext, not too long."""
    text = escape_unsafe(str(value)).replace("$", r"\$")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(fig: Any, alt: str) -> str:
    """The figure as an inline <svg> with role=img, aria-label and <title> (the text
    alternative); reproducible bytes (fixed ids, no date)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    match = _SVG_START.search(text)
    assert match is not None
    opening = match.group(0)[:-1] + f' role="img" aria-label="{html_text(alt)}">'
    return opening + f"<title>{html_text(alt)}</title>" + text[match.end() :]


def _figure(width: float = 6.4, height: float = 3.4) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig


def _stacked_bars(
    title: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    colours: Mapping[str, str] | None = None,
    horizontal: bool = False,
    ylabel: str = "",
) -> Any:
    height = max(1.8, 1.1 + 0.42 * len(categories)) if horizontal else 3.4
    fig = _figure(height=height)
    ax = fig.add_subplot()
    positions = list(range(len(categories)))
    bottom = [0.0] * len(categories)
    for n, (name, values) in enumerate(series.items()):
        colour = (colours or {}).get(name, _PALETTE[n % len(_PALETTE)])
        if horizontal:
            ax.barh(positions, values, left=bottom, label=_label(name), color=colour)
        else:
            ax.bar(positions, values, bottom=bottom, label=_label(name), color=colour)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    from matplotlib.ticker import MaxNLocator

    labels = [_label(c, 24) for c in categories]
    counts = MaxNLocator(integer=True)  # counts of requests and items are whole numbers
    if horizontal:
        ax.set_yticks(positions, labels)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
        ax.xaxis.set_major_locator(counts)
    else:
        step = -(-len(categories) // 12) or 1  # at most 12 labels: readable for long periods
        ax.set_xticks(positions[::step], labels[::step], rotation=45, ha="right")
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_locator(counts)
    ax.set_title(_label(title, 80), loc="left", fontsize=10)  # kept when a chart is cut out
    ax.spines[["top", "right"]].set_visible(False)
    if series:  # beside the plot, never over a bar
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = ["<table><thead><tr>"]
    out += [f"<th scope='col'>{html_text(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        cells = [f"<th scope='row'>{html_text(row[0])}</th>"]
        cells += [f"<td>{html_text(c)}</td>" for c in row[1:]]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _section(chart_id: str, title: str, svg: str, caption: str, table: str) -> str:
    return (
        f"<section class='chart' id='{chart_id}'>"
        f"<h2>{html_text(title)}</h2>"
        f"<div class='pair'><figure>{svg}"
        f"<figcaption>{html_text(caption)}</figcaption></figure>"
        f"<div class='numbers'>{table}</div></div></section>"
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.1f} h"


def _over_time(report: Mapping[str, Any], key: str, what: str, chart_id: str) -> str:
    ot = report["over_time"]
    periods: list[str] = list(ot["periods"])
    data: Mapping[str, Mapping[str, int]] = ot[key]
    for per in data.values():  # periods outside [from, to) (a late entry) still show
        periods += [p for p in per if p not in periods]
    series = {name: [per.get(p, 0) for p in periods] for name, per in data.items()}
    totals = {name: sum(v) for name, v in series.items()}
    split = "platform" if key == "requests_by_platform" else "outcome"
    title = f"{what.capitalize()} per {ot['unit']}, by {split}"
    fig = _stacked_bars(title, periods, series, ylabel=what)
    alt = (
        f"Stacked bar chart of {what} per {ot['unit']} from {periods[0] if periods else '-'} to "
        f"{periods[-1] if periods else '-'}, by {split}: "
        + (", ".join(f"{k} {v}" for k, v in totals.items()) or "none")
        + "."
    )
    busy = [p for p in periods if any(per.get(p, 0) for per in data.values())]
    table = _table(
        (ot["unit"], *data.keys(), "total"),
        (
            (
                p,
                *(per.get(p, 0) for per in data.values()),
                sum(per.get(p, 0) for per in data.values()),
            )
            for p in busy
        ),
    )
    return _section(chart_id, title, _svg(fig, alt), alt, table)


def _by_platform(report: Mapping[str, Any]) -> str:
    req = report["crosstabs"]["requests_by_platform_and_outcome"]
    items = report["crosstabs"]["items_by_platform_and_bucket"]
    platforms = sorted(set(req) | set(items))
    outcomes = sorted({o for per in req.values() for o in per})
    series = {o: [req.get(p, {}).get(o, 0) for p in platforms] for o in outcomes}
    title = "Requests by platform and outcome"
    fig = _stacked_bars(title, platforms, series, horizontal=True, ylabel="requests")
    alt = "Horizontal stacked bars of requests per platform by request outcome: " + (
        "; ".join(
            f"{p}: " + ", ".join(f"{o} {req.get(p, {}).get(o, 0)}" for o in outcomes)
            for p in platforms
        )
        or "none"
    )
    buckets = sorted({b for per in items.values() for b in per})
    table = _table(
        ("platform", "requests", *(f"items {b}" for b in buckets)),
        (
            (p, sum(req.get(p, {}).values()), *(items.get(p, {}).get(b, 0) for b in buckets))
            for p in platforms
        ),
    )
    return _section("requests-by-platform", title, _svg(fig, alt), alt, table)


def _sla(report: Mapping[str, Any]) -> str:
    s = report["sla"]
    late = s["items_counted"] - s["items_within"]
    parts = {
        "within SLA": s["items_within"],
        "late": late,
        "pending": s["items_pending"],
        "no SLA clock": s["items_excluded_no_clock"],
    }
    colours = {"within SLA": "#009E73", "late": "#D55E00", "pending": "#999999"}
    colours["no SLA clock"] = "#CCCCCC"
    fig = _stacked_bars(
        "Items decided within SLA (clock from the platform's receipt)",
        ["items"],
        {k: [v] for k, v in parts.items()},
        colours=colours,
        horizontal=True,
        ylabel="items",
    )
    alt = (
        f"Share of items decided within SLA, counted from the platform's receipt: "
        f"{s['items_within']} of {s['items_counted']} ({_pct(s['items_share_within'])}); "
        f"{late} late, {s['items_pending']} pending, {s['items_excluded_no_clock']} without "
        f"an SLA clock. Requests within SLA: {s['requests_within']} of "
        f"{s['requests_counted']} ({_pct(s['requests_share_within'])})."
    )
    table = _table(
        ("", "count", "share"),
        [
            ("items within SLA", s["items_within"], _pct(s["items_share_within"])),
            ("items late", late, ""),
            ("items pending", s["items_pending"], ""),
            ("items without an SLA clock", s["items_excluded_no_clock"], ""),
            ("requests within SLA", s["requests_within"], _pct(s["requests_share_within"])),
            ("requests counted", s["requests_counted"], ""),
        ],
    )
    return _section("sla", "Share within SLA", _svg(fig, alt), alt, table)


def _time_to_effect(report: Mapping[str, Any]) -> str:
    hist: Mapping[str, int] = report["histograms"]["receipt_to_effect_hours"]
    d = report["durations"]["receipt_to_effect"]
    title = "Time from the platform's receipt to removal or restriction"
    fig = _stacked_bars(title, list(hist), {"items": list(hist.values())}, ylabel="items")
    alt = (
        f"Histogram of the time from the platform's receipt to removal or restriction over "
        f"{d['n']} items (median {_hours(d['median_seconds'])}, 90th percentile "
        f"{_hours(d['p90_seconds'])}): " + ", ".join(f"{k}: {v}" for k, v in hist.items())
    )
    rows: list[tuple[Any, ...]] = [(k, v) for k, v in hist.items()]
    rows += [("median", _hours(d["median_seconds"])), ("90th percentile", _hours(d["p90_seconds"]))]
    return _section("time-to-effect", title, _svg(fig, alt), alt, _table(("hours", "items"), rows))


def _removals(report: Mapping[str, Any]) -> str:
    v = report["verification"]
    claims = [c for c, counts in v["by_claim"].items() if sum(counts.values())] or list(
        v["by_claim"]
    )
    statuses = ("confirmed", "unverified", "contradicted")
    series = {st: [v["by_claim"][c][st] for c in claims] for st in statuses}
    title = "Removals: confirmed, unverified and contradicted by our own probes"
    fig = _stacked_bars(
        title, claims, series, colours=_STATUS_COLOURS, horizontal=True, ylabel="items"
    )
    alt = (
        f"{v['removals']} items the platforms say are gone: {v['confirmed']} confirmed by our "
        f"probes ({_pct(v['share_confirmed'])}), {v['unverified']} unverified "
        f"({_pct(v['share_unverified'])}), {v['contradicted']} contradicted "
        f"({_pct(v['share_contradicted'])}). Unverified is never counted as confirmed."
    )
    rows: list[tuple[Any, ...]] = [(c, *(v["by_claim"][c][st] for st in statuses)) for c in claims]
    rows.append(("all", v["confirmed"], v["unverified"], v["contradicted"]))
    table = _table(("platform claim", *statuses), rows)
    return _section("removals", "Removals and verification", _svg(fig, alt), alt, table)


def _appeals(report: Mapping[str, Any]) -> str:
    ap = report["appeals"]
    types = list(ap["by_appellant_type"])
    outcomes = list(ap["by_outcome"])
    both: Mapping[str, int] = ap["by_appellant_type_and_outcome"]
    series = {o: [both.get(f"{t}/{o}", 0) for t in types] for o in outcomes}
    title = "Appeals by appellant and outcome"
    fig = _stacked_bars(title, types, series, horizontal=True, ylabel="appeals")
    alt = (
        f"{ap['total']} appeals: "
        + (", ".join(f"{o} {n}" for o, n in ap["by_outcome"].items()) or "none")
        + f"; {ap['items_reinstated']} items reinstated after an appeal."
    )
    rows: list[tuple[Any, ...]] = [(k, n) for k, n in both.items()]
    rows.append(("items reinstated (reversals)", ap["items_reinstated"]))
    table = _table(("appellant / outcome", "count"), rows)
    return _section("appeals", "Appeals and reversals", _svg(fig, alt), alt, table)


_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, "Segoe UI", "DejaVu Sans", sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #111; line-height: 1.4; }
h1 { margin-bottom: .2rem; } .meta { color: #444; margin-top: 0; }
.chart { border-top: 1px solid #ccc; padding-top: .6rem; break-inside: avoid;
         page-break-inside: avoid; }
.pair { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1.2rem;
        align-items: start; }
figure { margin: 0; } figure svg { width: 100%; height: auto; }
figcaption { font-size: .85rem; color: #333; }
table { border-collapse: collapse; font-size: .85rem; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .2rem .4rem; text-align: right; }
th[scope=row], thead th:first-child { text-align: left; }
.totals { font-size: 1.1rem; }
@media (max-width: 50rem) { .pair { grid-template-columns: 1fr; } }
@media print { body { margin: 0; max-width: none; } .pair { grid-template-columns: 3fr 2fr; }
               a { color: inherit; text-decoration: none; } }
"""


def render_html(report: Mapping[str, Any]) -> str:
    """The whole report as one HTML document (charts first, then the numbers behind them)."""
    import matplotlib
    from cycler import cycler

    settings: Any = {
        "svg.fonttype": "none",  # text stays text: selectable, searchable, read aloud
        "svg.hashsalt": "docket-report",  # stable element ids: the same report, the same file
        "font.family": "sans-serif",
        "font.size": 9,
        "text.parse_math": False,  # "$" in a label is a dollar sign, never TeX
        "axes.prop_cycle": cycler(color=_PALETTE),
    }
    with matplotlib.rc_context(settings):
        sections = [
            _over_time(report, "requests_by_platform", "requests", "requests-over-time"),
            _over_time(report, "items_by_bucket", "items", "items-over-time"),
            _by_platform(report),
            _sla(report),
            _time_to_effect(report),
            _removals(report),
            _appeals(report),
        ]
    p, t, src = report["period"], report["totals"], report["source"]
    head = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>Transparency report {html_text(p['from'][:10])} to {html_text(p['to'][:10])}"
        f"</title><style>{_CSS}</style></head><body>"
    )
    intro = (
        "<h1>Transparency report</h1>"
        f"<p class='meta'>Period {html_text(p['from'])} to {html_text(p['to'])} "
        f"({html_text(p['selection'])}). Computed from the audit log alone: "
        f"{html_text(src['files'])} files, {html_text(src['entries'])} entries, log up to "
        f"{html_text(src['log_horizon'])}. Check the log first with "
        "<code>python -m audit verify</code>.</p>"
        f"<p class='totals'><strong>{html_text(t['requests'])} requests, "
        f"{html_text(t['items'])} items.</strong> SLA figures count from the platform's "
        "receipt of a request, as the rules do.</p>"
    )
    md_tables = _dimension_tables(report)
    return head + intro + "".join(sections) + md_tables + "</body></html>\n"


def _dimension_tables(report: Mapping[str, Any]) -> str:
    out = ["<section class='chart' id='dimensions'><h2>Requests and items by dimension</h2>"]
    for dim, by_req in report["requests_by"].items():
        by_items = report["items_by"][dim]
        keys = list(dict.fromkeys([*by_req, *by_items]))
        out.append(f"<h3>By {html_text(dim.replace('_', ' '))}</h3>")
        out.append(
            _table(
                ("value", "requests", "items"),
                ((k, by_req.get(k, 0), by_items.get(k, 0)) for k in keys),
            )
        )
    durations = report["durations"]
    out.append("<h3>Times</h3>")
    out.append(
        _table(
            ("interval", "n", "median", "90th percentile"),
            (
                (d["label"], d["n"], _hours(d["median_seconds"]), _hours(d["p90_seconds"]))
                for d in durations.values()
            ),
        )
    )
    out.append("</section>")
    return "".join(out)
