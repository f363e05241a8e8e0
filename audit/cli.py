"""``python -m audit`` / ``docket-audit``: offline auditor tools (and ``reconcile``).

The command-line layer: it parses arguments, connects to Temporal (``reconcile`` only), draws
progress on a terminal, prints, and picks the exit code. Everything it runs is in the library
modules (``audit.verify``, ``audit.show``, ``audit.report``, ``audit.reconcile``), which never
import this one.

Exit codes: 0 OK, 1 verification failed (findings) or request not found, 2 bad arguments or
unreadable input.

Adding a subcommand: write ``_register_<name>(subparsers)`` adding a parser with
``set_defaults(run=_run_<name>)``, where ``_run_<name>(args) -> int``, and append the register
function to :data:`REGISTRARS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from audit.progress import for_stream
from audit.reader import MissingInput, UnreadableInput, default_paths
from docket.text import terminal

__all__ = ["EXIT_FINDINGS", "EXIT_OK", "EXIT_USAGE", "REGISTRARS", "build_parser", "main"]

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
    print(f"audit: error: {terminal(msg)}", file=sys.stderr)
    return EXIT_USAGE


def _input_error(exc: OSError) -> int:
    """Exit 2 naming every path that could not be read and why."""
    if isinstance(exc, UnreadableInput):
        for problem in exc.problems:
            _fail(f"cannot read {problem.path}: {problem.found} ({problem.message})")
        return EXIT_USAGE
    if isinstance(exc, MissingInput):
        return _fail(str(exc))
    where = f"{exc.filename}: " if exc.filename else ""
    return _fail(f"cannot read {where}{exc.strerror or exc}")


def _write(args: argparse.Namespace, text: str) -> int:
    """The command's output, to --output FILE or stdout."""
    if getattr(args, "output", None):
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            return _fail(f"cannot write {args.output}: {exc.strerror or exc}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


# -- verify -----------------------------------------------------------------------------------


def _run_verify(args: argparse.Namespace) -> int:
    from audit.reader import discover
    from audit.verify import load_anchors, verify_inputs

    anchors = []
    if args.anchors:
        try:
            anchors = load_anchors(args.anchors)
        except OSError as exc:
            return _fail(f"cannot read anchors: {exc}")
        except ValueError as exc:
            return _fail(f"bad anchors file: {exc}")
    paths = _paths(args)
    if args.jobs is not None and args.jobs < 1:
        return _fail("--jobs must be at least 1")
    trust = None
    if args.trust:
        from docket.credentials import TrustFileError, load_trust

        try:
            trust = load_trust(args.trust)
        except TrustFileError as exc:
            return _fail(f"bad trust file: {exc}")
    try:
        inputs = discover(paths)
        if not inputs.files and not inputs.problems and not anchors and not args.checkpoint:
            return _fail(f"no *.jsonl audit segments found in {' '.join(paths)}")
        result = verify_inputs(
            inputs,
            anchors=anchors,
            anchors_are_prefixes=args.anchors_are_checkpoints,
            jobs=args.jobs,
            strict=args.strict,
            progress=for_stream(sys.stderr),
        )
        signatures = None
        if trust is not None:
            from audit.signatures import check_signatures, finding_order

            signatures = check_signatures(
                inputs, trust, jobs=args.jobs, progress=for_stream(sys.stderr)
            )
            result.findings = sorted([*result.findings, *signatures.findings], key=finding_order)
    except OSError as exc:
        return _input_error(exc)
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
        if signatures is not None:
            doc["signatures"] = {
                "summary": signatures.summary(),
                "notes": [n.to_dict() for n in signatures.notes],
            }
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        for f in result.findings:
            print(f.render())
        for note in completeness.notes if completeness is not None else ():
            print(note.render())
        if signatures is not None:
            _print_notes(signatures.notes, args.all_notes)
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
        if signatures is not None:
            print(signatures.render_summary())
        if result.legacy_lines:
            print(
                f"note: {result.legacy_lines} lines in the older form (U+2028/U+2029 escaped, "
                "written before the byte-exact layout); they verify"
            )
        if result.ignored:
            shown = ", ".join(terminal(p) for p in result.ignored[:5])
            more = f" and {len(result.ignored) - 5} more" if len(result.ignored) > 5 else ""
            print(
                f"note: {len(result.ignored)} files not named *.jsonl were not read: {shown}{more}"
            )
    return EXIT_OK if result.ok else EXIT_FINDINGS


_NOTES_SHOWN = 10


def _print_notes(notes: Sequence[Any], show_all: bool) -> None:
    """Notes are informational: a log from before signing has one per request, so only the
    first few are printed unless asked (--json has them all)."""
    shown = notes if show_all else notes[:_NOTES_SHOWN]
    for note in shown:
        print(note.render())
    if len(notes) > len(shown):
        print(f"note: {len(notes) - len(shown)} more notes like these (--all-notes or --json)")


def _register_verify(sub: Any) -> None:
    p = sub.add_parser(
        "verify",
        help="check hashes, chains, sequences, byte-exact lines and anchors; exit 1 on findings",
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
    p.add_argument(
        "--trust",
        metavar="FILE",
        help="check every human entry's signature and credential against this trust file "
        "(the worker's DOCKET_TRUST_FILE format), at the entry's time",
    )
    p.add_argument(
        "--all-notes",
        action="store_true",
        help=f"print every note (default: the first {_NOTES_SHOWN})",
    )
    from audit.checkpoint_cli import add_verify_options

    add_verify_options(p)
    p.set_defaults(run=_run_verify)


# -- show -------------------------------------------------------------------------------------


def _run_show(args: argparse.Namespace) -> int:
    from audit.show import render_timeline, timeline

    try:
        rows = timeline(args.request_id, _paths(args))
    except OSError as exc:
        return _input_error(exc)
    if not rows:
        missing = f"audit: no entries for {args.request_id!r} in {' '.join(_paths(args))}"
        print(terminal(missing), file=sys.stderr)
        return EXIT_FINDINGS
    if args.json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render_timeline(args.request_id, rows, width=None if args.wide else 60))
    return EXIT_OK if all(r.get("check") == "ok" for r in rows) else EXIT_FINDINGS


def _register_show(sub: Any) -> None:
    p = sub.add_parser("show", help="one request's timeline, verified inline")
    p.add_argument("request_id", metavar="REQUEST_ID", help="the workflow id / chain id")
    _add_paths(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--wide", action="store_true", help="do not shorten long cells")
    p.set_defaults(run=_run_show)


# -- report -----------------------------------------------------------------------------------


def _run_report(args: argparse.Namespace) -> int:
    from audit.report import FORMATS, build_report, parse_period_bound, render

    if args.format not in FORMATS:
        return _fail(f"--format {args.format!r}: choose one of {', '.join(FORMATS)}")
    try:
        start = parse_period_bound(args.date_from, end=False)
        end = parse_period_bound(args.date_to, end=True)
    except ValueError as exc:
        return _fail(str(exc))
    if end <= start:
        return _fail(f"--to ({args.date_to}) must not be before --from ({args.date_from})")
    if args.jobs is not None and args.jobs < 1:
        return _fail("--jobs must be at least 1")
    try:
        report = build_report(
            _paths(args), start, end, jobs=args.jobs, progress=for_stream(sys.stderr)
        )
    except OSError as exc:
        return _input_error(exc)
    return _write(args, render(report, args.format))


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
    p.add_argument(
        "--format",
        default="md",
        metavar="FORMAT",
        help="md (default), csv, json, or html (one self-contained file with charts)",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--jobs", type=int, default=None, help="parsing processes (default: auto)")
    _add_paths(p)
    p.set_defaults(run=_run_report)


# -- reconcile --------------------------------------------------------------------------------


def _run_reconcile(args: argparse.Namespace) -> int:
    import asyncio

    from temporalio.service import RPCError

    from audit.reader import find_segments
    from audit.reconcile import ReconcileResult, reconcile, rpc_message
    from docket.client import DocketError, connect

    paths = _paths(args)
    try:
        find_segments(paths)
    except OSError as exc:
        return _input_error(exc)
    if args.concurrency < 1:
        return _fail("--concurrency must be at least 1")

    async def go() -> ReconcileResult:
        client = await connect(identity="docket-audit-reconcile")  # the CLI connects; not the lib
        return await reconcile(
            client,
            paths,
            query=args.query,
            workflow_ids=args.workflow_id or (),
            concurrency=args.concurrency,
        )

    try:
        result = asyncio.run(go())
    except DocketError as exc:
        return _fail(str(exc))
    except RPCError as exc:
        return _fail(f"Temporal: {rpc_message(exc)}")
    except OSError as exc:
        return _input_error(exc)
    if args.json:
        sys.stdout.write(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        sys.stdout.write(result.render_text())
    return EXIT_OK if result.ok else EXIT_FINDINGS


def _register_reconcile(sub: Any) -> None:
    p = sub.add_parser(
        "reconcile",
        help="compare the log with Temporal's histories and workflow results (needs Temporal)",
        description=(
            "Every entry a completed write_audit_entries activity carried must be in the log "
            "(same event.id and hash), the log must hold nothing else, and each completed "
            "workflow's result/memo anchor must be the log's chain head. Connection settings "
            "come from temporalio.envconfig (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, ...)."
        ),
    )
    _add_paths(p)
    p.add_argument(
        "--query",
        metavar="VISIBILITY_QUERY",
        help="which workflows (default: WorkflowType = 'AuthorityRequest', plus unknown chains "
        "in the log)",
    )
    p.add_argument(
        "--workflow-id",
        action="append",
        metavar="ID",
        help="reconcile this workflow (repeatable; with --query: both)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--concurrency",
        type=int,
        default=32,
        metavar="N",
        help="histories fetched at once (default 32)",
    )
    p.set_defaults(run=_run_reconcile)


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
