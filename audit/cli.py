"""``python -m audit`` / ``docket-audit``: offline auditor tools.

Exit codes: 0 OK, 1 verification failed (findings) or request not found, 2 bad arguments or
unreadable input.

Adding a subcommand (e.g. ``reconcile``): write ``register(subparsers)`` in its module that adds
a parser with ``set_defaults(run=...)``, where ``run(args) -> int``, and append the module's
``register`` to :data:`REGISTRARS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from audit.reader import default_paths

__all__ = ["REGISTRARS", "build_parser", "main"]

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _paths(args: argparse.Namespace) -> list[str]:
    return list(args.paths) if args.paths else default_paths()


def _add_paths(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="segment files or directories (default: $DOCKET_AUDIT_DIR or ./var/audit)",
    )


def _fail(msg: str) -> int:
    print(f"audit: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


# -- verify -----------------------------------------------------------------------------------


def _run_verify(args: argparse.Namespace) -> int:
    from audit.verify import load_anchors, verify_paths

    anchors = []
    if args.anchors:
        try:
            anchors = load_anchors(args.anchors)
        except OSError as exc:
            return _fail(f"cannot read anchors: {exc}")
        except ValueError as exc:
            return _fail(f"bad anchors file: {exc}")
    try:
        result = verify_paths(
            _paths(args),
            anchors=anchors,
            anchors_are_prefixes=args.anchors_are_checkpoints,
            jobs=args.jobs,
            strict=args.strict,
        )
    except FileNotFoundError as exc:
        return _fail(str(exc))
    if result.files == 0 and not anchors and not args.checkpoint:
        return _fail(f"no *.jsonl audit segments found in {' '.join(_paths(args))}")
    completeness = None
    if args.checkpoint:
        from audit.checkpoint_cli import run_verify_checkpoint

        completeness = run_verify_checkpoint(args, _paths(args))
        if isinstance(completeness, int):
            return completeness
        result.findings.extend(completeness.findings)
    if args.json:
        doc = result.to_dict()
        if completeness is not None:
            doc["checkpoint"] = completeness.to_dict()
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        for f in result.findings:
            print(f.render())
        for note in completeness.notes if completeness is not None else ():
            print(note.render())
        if completeness is not None:
            print(completeness.render_summary())
        s = result.summary()
        print(
            f"{s['status']}: {s['files']} files, {s['lines']} lines, {s['entries']} entries in "
            f"{s['chains']} chains, {s['duplicates_dropped']} identical duplicates dropped, "
            f"{s['anchors_checked']} anchors checked, {s['findings']} findings"
            + (
                " (" + ", ".join(f"{k}={v}" for k, v in s["findings_by_code"].items()) + ")"
                if s["findings"]
                else ""
            )
        )
    return EXIT_OK if result.ok else EXIT_FINDINGS


def _register_verify(sub: Any) -> None:
    p = sub.add_parser(
        "verify",
        help="check hashes, chains, sequences and anchors; non-zero exit on any finding",
        description="Verify audit segments (CloudTrail validate-logs style).",
    )
    _add_paths(p)
    p.add_argument(
        "--anchors",
        metavar="FILE",
        help="JSON array or JSON lines of {chain_id|workflow_id, count, head_hash}",
    )
    p.add_argument(
        "--anchors-are-checkpoints",
        action="store_true",
        help="anchors are earlier checkpoints: the log may have grown beyond them",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--strict", action="store_true", help="check every body's canonical subset")
    p.add_argument("--jobs", type=int, default=None, help="hashing processes (default: auto)")
    from audit.checkpoint_cli import add_verify_options

    add_verify_options(p)
    p.set_defaults(run=_run_verify)


# -- show -------------------------------------------------------------------------------------


def _run_show(args: argparse.Namespace) -> int:
    from audit.show import render_timeline, timeline

    try:
        rows = timeline(args.request_id, _paths(args))
    except FileNotFoundError as exc:
        return _fail(str(exc))
    if not rows:
        print(
            f"audit: no entries for {args.request_id!r} in {' '.join(_paths(args))}",
            file=sys.stderr,
        )
        return EXIT_FINDINGS
    if args.json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render_timeline(args.request_id, rows))
    return EXIT_OK if all(r.get("check") == "ok" for r in rows) else EXIT_FINDINGS


def _register_show(sub: Any) -> None:
    p = sub.add_parser("show", help="one request's timeline, verified inline")
    p.add_argument("request_id", metavar="REQUEST_ID", help="the workflow id / chain id")
    _add_paths(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=_run_show)


# -- report -----------------------------------------------------------------------------------


def _run_report(args: argparse.Namespace) -> int:
    from audit.report import build_report, parse_period_bound, render

    try:
        start = parse_period_bound(args.date_from, end=False)
        end = parse_period_bound(args.date_to, end=True)
    except ValueError as exc:
        return _fail(str(exc))
    if end <= start:
        return _fail(f"--to ({args.date_to}) must not be before --from ({args.date_from})")
    try:
        report = build_report(_paths(args), start, end, jobs=args.jobs)
    except FileNotFoundError as exc:
        return _fail(str(exc))
    sys.stdout.write(render(report, args.format))
    return EXIT_OK


def _register_report(sub: Any) -> None:
    p = sub.add_parser("report", help="the transparency report for a period, from the log alone")
    p.add_argument(
        "--from",
        dest="date_from",
        required=True,
        metavar="DATE",
        help="YYYY-MM-DD or ISO datetime (inclusive)",
    )
    p.add_argument(
        "--to",
        dest="date_to",
        required=True,
        metavar="DATE",
        help="YYYY-MM-DD (that whole day included) or ISO datetime (exclusive)",
    )
    p.add_argument("--format", choices=("md", "csv", "json"), default="md")
    p.add_argument("--jobs", type=int, default=None, help="parsing processes (default: auto)")
    _add_paths(p)
    p.set_defaults(run=_run_report)


def _register_reconcile(sub: Any) -> None:
    from audit.reconcile import register

    register(sub)


def _register_checkpoints(sub: Any) -> None:
    from audit.checkpoint_cli import register_all

    register_all(sub)


REGISTRARS: list[Callable[[Any], None]] = [
    _register_verify,
    _register_show,
    _register_report,
    _register_reconcile,
    _register_checkpoints,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audit",
        description="Docket audit log tools (offline; read-only).",
        epilog="exit codes: 0 ok, 1 findings / not found, 2 usage or input error",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in REGISTRARS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
