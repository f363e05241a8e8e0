"""Docket's command line for officials and scripts: submit requests and drive them.

    python starter.py validate examples/seed/*.json          # offline, no Temporal needed
    python starter.py submit examples/seed/mic-facebook-2017.json --as nguyen.van.an
    python starter.py approve REQUEST --as tran.thi.binh --reason "Legal basis checked"
    python starter.py sign approve REQUEST --as tran.thi.binh --reason "..."   # for any client
    python starter.py status REQUEST [--json]
    python starter.py list --state awaiting_ack --platform facebook

Every submission and command is signed with the acting official's key: `--as ID` names
them (default $DOCKET_ACTOR) and the key is `--key FILE` (its credential `FILE-cert.pub`
beside it), else `$DOCKET_KEYS_DIR/ID`, else $DOCKET_KEY, else the SSH agent
(docs/identity.md). Exit codes: 0 ok, 1 refused (by the lifecycle: state, role, four-eyes;
or who acts: signature, credential), 2 bad input, 3 unknown request, 4 submission
conflict, 5 Temporal unreachable (safe to send again), 6 Temporal refused this client.
The same operations are importable for scripts: see `docket.client` (re-exported here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audit.show import render_timeline
from docket.client import (
    BadInput,
    CommandRefused,
    DocketError,
    NotFound,
    SubmissionConflict,
    Submitted,
    Unavailable,
    connect,
    list_query,
    list_requests,
    send_command,
    send_signed,
    signed_command,
    signed_submission,
    status,
    submit,
    timeline,
)
from docket.lifecycle import TRANSITIONS, State, allowed_triggers, table
from docket.models import Order
from docket.reference import ReferenceData, ReferenceError, default_reference
from docket.signer import Signer, SignerError, load_signer
from docket.text import terminal
from docket.validation import InvalidRequest, read_request_file, validate_order

__all__ = [
    "BadInput",
    "CommandRefused",
    "DocketError",
    "NotFound",
    "SubmissionConflict",
    "Submitted",
    "Unavailable",
    "connect",
    "list_requests",
    "main",
    "send_command",
    "status",
    "submit",
    "timeline",
]

EXIT_OK, EXIT_REFUSED, EXIT_BAD_INPUT = 0, 1, 2


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


# --- validate / submit ----------------------------------------------------------------------


def load_orders(paths: Sequence[str], reference: ReferenceData) -> tuple[list[Order], list[str]]:
    """Every valid order in the files, and every problem as `SOURCE: PATH: MESSAGE`."""
    orders: list[Order] = []
    problems: list[str] = []
    for name in paths:
        path = Path(name)
        try:
            raws = list(read_request_file(path))
        except InvalidRequest as exc:
            problems += [f"{exc.source}: {issue}" for issue in exc.issues]
            continue
        for raw in raws:
            try:
                orders.append(validate_order(raw.data, reference, source=raw.source))
            except InvalidRequest as exc:
                problems += [f"{exc.source}: {issue}" for issue in exc.issues]
    return orders, problems


def cmd_validate(args: argparse.Namespace, reference: ReferenceData) -> int:
    orders, problems = load_orders(args.files, reference)
    if args.json:
        _print_json({"valid": len(orders), "problems": problems})
    else:
        for line in problems:
            print(line)
        print(f"{len(orders)} valid request(s), {len(problems)} problem(s)", file=sys.stderr)
    return EXIT_BAD_INPUT if problems else EXIT_OK


async def cmd_submit(args: argparse.Namespace, reference: ReferenceData) -> int:
    orders, problems = load_orders(args.files, reference)
    if problems:  # nothing is submitted unless every request in the batch is valid
        for line in problems:
            print(line, file=sys.stderr)
        print("nothing submitted: fix the problems above", file=sys.stderr)
        return EXIT_BAD_INPUT
    signer = _signer(args)
    client = await connect(identity=signer.actor_id)
    results: list[dict[str, Any]] = []
    worst = EXIT_OK
    for order in orders:
        try:
            submitted = await submit(client, order, signer=signer, reference=reference)
        except DocketError as exc:
            worst = max(worst, exc.exit_code)
            results.append({"reference": order.reference, "error": str(exc)})
            if not args.json:
                print(f"{order.authority} {order.reference}: {exc}", file=sys.stderr)
            continue
        results.append(
            {
                "request_id": submitted.request_id,
                "run_id": submitted.run_id,
                "created": submitted.created,
            }
        )
        if not args.json:
            verb = "submitted" if submitted.created else "already submitted (attached)"
            print(f"{submitted.request_id}: {verb}")
    if args.json:
        _print_json(results)
    return worst


# --- commands -------------------------------------------------------------------------------


def _signer(args: argparse.Namespace) -> Signer:
    """The acting official's signer: `--key FILE`, else `$DOCKET_KEYS_DIR/<--as>`, else
    $DOCKET_KEY, else the SSH agent; its credential must be the `--as` actor's."""
    actor_id = args.actor or os.environ.get("DOCKET_ACTOR")
    if not actor_id:
        raise BadInput("name the acting official with --as ID (or set DOCKET_ACTOR)")
    key = args.key
    keys_dir = os.environ.get("DOCKET_KEYS_DIR")
    if key is None and keys_dir and (Path(keys_dir) / actor_id).is_file():
        key = Path(keys_dir) / actor_id
    try:
        return load_signer(key=key, certificate=args.cert, actor=actor_id)
    except SignerError as exc:
        raise BadInput(f"--as {actor_id}: {exc}") from None


def _effects(args: argparse.Namespace) -> list[dict[str, Any]]:
    """`--item ID=EFFECT[:CC,CC]` (restricted countries) plus optional --effects-file."""
    effects: list[dict[str, Any]] = []
    for spec in args.item or []:
        item_id, sep, rest = spec.partition("=")
        if not sep or not rest:
            raise BadInput(f"--item {spec!r}: expected ITEM=EFFECT or ITEM=restricted:VN,TH")
        effect, _, countries = rest.partition(":")
        entry: dict[str, Any] = {"item_id": item_id, "effect": effect}
        if countries:
            entry["restricted_in"] = countries.split(",")
        if args.item_reason:
            entry["reason"] = args.item_reason
        effects.append(entry)
    if args.effects_file:
        try:
            loaded = json.loads(Path(args.effects_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError: bad JSON, not UTF-8
            raise BadInput(f"--effects-file: {exc}") from None
        if not isinstance(loaded, list):
            raise BadInput("--effects-file: expected a JSON array of item effects")
        effects += loaded
    if not effects:
        raise BadInput("effect: give at least one --item ITEM=EFFECT or --effects-file")
    return effects


def _command_payload(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The trigger and the command's fields from the options (never an actor: the signer)."""
    reason = args.reason.replace("\r\n", "\n")
    payload: dict[str, Any] = {"reason": reason}
    trigger = args.trigger
    if trigger == "report_effect":
        payload["effects"] = _effects(args)
    elif trigger == "info":
        if bool(args.question) == bool(args.answer):
            raise BadInput("info: give exactly one of --question (platform) or --answer")
        trigger = "request_info" if args.question else "provide_info"
        payload["question" if args.question else "answer"] = args.question or args.answer
    elif trigger == "file_appeal":
        payload.update(
            appellant_type=args.appellant_type,
            target_items=args.items.split(",") if args.items else [],
            grounds=args.grounds,
        )
    elif trigger == "decide_appeal":
        payload["outcome"] = args.outcome
        if args.items:
            payload["reversed_items"] = args.items.split(",")
    elif trigger == "acknowledge" and args.at:
        payload["acknowledged_at"] = args.at
    return trigger, payload


async def cmd_command(args: argparse.Namespace, reference: ReferenceData) -> int:
    signer = _signer(args)
    trigger, payload = _command_payload(args)
    signed = signed_command(args.request, trigger, payload, signer)
    client = await connect(identity=signer.actor_id)
    try:
        receipt = await send_signed(client, args.request, trigger, signed, update_id=args.update_id)
    except CommandRefused as exc:
        if args.json:
            _print_json(
                {"error": str(exc), "state": exc.state, "allowed": exc.allowed, "code": exc.code}
            )
        else:
            print(f"refused: {terminal(exc)}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        _print_json(receipt.model_dump(mode="json"))
    else:
        outcome = f" (outcome {receipt.outcome})" if receipt.outcome else ""
        print(
            f"{receipt.request_id}: {receipt.trigger}: {receipt.from_state} -> "
            f"{receipt.state}{outcome}; audit #{receipt.sequence} {receipt.hash[:16]}"
        )
    return EXIT_OK


def cmd_sign(args: argparse.Namespace, reference: ReferenceData) -> int:
    """Print a signed command (or submission) for any other Temporal client, e.g.
    `temporal workflow update execute --name approve --input "$(starter.py sign approve ...)"`."""
    signer = _signer(args)
    if args.trigger == "submit":
        orders, problems = load_orders([args.file], reference)
        if problems:
            for line in problems:
                print(line, file=sys.stderr)
            return EXIT_BAD_INPUT
        if len(orders) != 1:
            raise BadInput(f"{args.file}: holds {len(orders)} requests; sign one at a time")
        signed = signed_submission(orders[0], signer)
    else:
        trigger, payload = _command_payload(args)
        signed = signed_command(args.request, trigger, payload, signer)
    print(json.dumps(signed.model_dump(), ensure_ascii=False))
    return EXIT_OK


# --- reading --------------------------------------------------------------------------------


async def cmd_status(args: argparse.Namespace, reference: ReferenceData) -> int:
    client = await connect()
    data = await status(client, args.request)
    if args.json:
        _print_json(data)
        return EXIT_OK
    t = terminal  # every value may come from people or platforms: shown, never obeyed
    print(
        f"{t(data['request_id'])}  {t(data.get('authority'))} {t(data.get('reference'))} -> "
        f"{t(data.get('platform'))}"
    )
    outcome = f"  outcome: {t(data['outcome'])}" if data.get("outcome") else ""
    print(f"state: {t(data['state'])}{outcome}")
    if data["state"] == "submitting":
        return EXIT_OK
    due = data["due_at"] or "-"
    print(f"SLA: {t(data['sla_policy'])}  due: {t(due)}  breached: {data['sla_breached']}")
    print(f"allowed now: {', '.join(data['allowed']) or 'nothing'}")
    if data.get("delivery_error"):
        print(f"delivery error: {t(data['delivery_error'])}")
    if data.get("info_question"):
        print(f"platform asks: {t(data['info_question'])}")
    print(
        f"{'item':<12} {'category':<18} {'claim':<17} {'verification':<13} {'observed':<30} outcome"
    )
    for item in data["items"]:
        seen = ", ".join(f"{v}:{o}" for v, o in item["observations"].items()) or "-"
        print(
            f"{t(item['item_id']):<12} {t(item['category']):<18} {t(item['claim'] or '-'):<17} "
            f"{t(item.get('verification', '-')):<13} {t(seen):<30} {t(item['outcome'])}"
        )
    audit = data["audit"]
    print(f"audit: {audit['count']} entries, head {audit['head_hash']}")
    return EXIT_OK


async def cmd_timeline(args: argparse.Namespace, reference: ReferenceData) -> int:
    client = await connect()
    entries = await timeline(client, args.request)
    if args.json:
        _print_json(entries)
    else:
        print(render_timeline(args.request, entries), end="")
    return EXIT_OK


async def cmd_list(args: argparse.Namespace, reference: ReferenceData) -> int:
    if args.state and args.state not in {s.value for s in State}:
        raise BadInput(f"--state: unknown state {args.state!r}; states: {_states()}")
    query_text = list_query(
        state=args.state,
        platform=args.platform,
        authority=args.authority,
        breached=True if args.breached else None,
        overdue=args.overdue,
        open_only=args.open,
    )
    client = await connect()
    rows = [row async for row in list_requests(client, query_text, limit=args.limit)]
    if args.json:
        _print_json([row.__dict__ for row in rows])
        return EXIT_OK
    print(f"{'request':<40} {'state':<17} {'platform':<10} {'authority':<9} {'outcome':<19} due")
    for row in rows:
        due = row.due_at.strftime("%Y-%m-%d %H:%M") if row.due_at else "-"
        flag = " (breached)" if row.sla_breached else ""
        print(
            f"{row.request_id:<40} {row.state or '-':<17} {row.platform or '-':<10} "
            f"{row.authority or '-':<9} {row.outcome or '-':<19} {due}{flag}"
        )
    print(f"{len(rows)} request(s)", file=sys.stderr)
    return EXIT_OK


def cmd_triggers(args: argparse.Namespace, reference: ReferenceData) -> int:
    if args.state:
        if args.state not in {s.value for s in State}:
            raise BadInput(f"unknown state {args.state!r}; states: {_states()}")
        for trigger in allowed_triggers(args.state):
            rows = [r for r in TRANSITIONS if r.trigger == trigger]
            roles = sorted({role.value for r in rows for role in r.roles})
            print(f"{trigger:<16} roles: {', '.join(roles)}")
        return EXIT_OK
    for row in table():
        print(f"{row['trigger']:<20} {row['from']:<60} -> {row['to']:<28} [{row['roles']}]")
    return EXIT_OK


def _states() -> str:
    return ", ".join(s.value for s in State)


# --- parser ---------------------------------------------------------------------------------

COMMAND_HELP = {
    "approve": "approve a request (approver; not its maker)",
    "reject": "reject a request before anything is sent (approver)",
    "ack": "acknowledge receipt (platform liaison)",
    "effect": "report the platform's decision per item (platform liaison)",
    "info": "ask for more information (--question) or answer it (--answer)",
    "appeal": "file an appeal against removals or declines",
    "decide": "decide the open appeal (reviewer; not an earlier decider)",
    "withdraw": "withdraw the request (authority)",
    "retry": "retry a failed delivery",
    "renotify": "ask the platform again after a disputed claim",
    "escalate": "close an unanswered request as unresponsive (authority)",
    "close": "close a disputed request with the disagreement on record",
}
TRIGGER_OF = {
    "approve": "approve",
    "reject": "reject",
    "ack": "acknowledge",
    "effect": "report_effect",
    "info": "info",
    "appeal": "file_appeal",
    "decide": "decide_appeal",
    "withdraw": "withdraw",
    "retry": "retry_delivery",
    "renotify": "renotify",
    "escalate": "escalate",
    "close": "close",
}


def _add_identity(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as", dest="actor", metavar="ID", help="the acting official (their key signs)")
    p.add_argument("--key", metavar="FILE", help="private key (default $DOCKET_KEYS_DIR/ID)")
    p.add_argument("--cert", metavar="FILE", help="credential (default FILE-cert.pub)")


def _add_command_options(p: argparse.ArgumentParser, name: str) -> None:
    """The options of one lifecycle command (shared by the command and `sign`)."""
    p.add_argument("request", metavar="REQUEST", help="request id (req-...)")
    _add_identity(p)
    p.add_argument("--reason", required=True, help="why (recorded in the audit log)")
    p.set_defaults(trigger=TRIGGER_OF[name])
    if name == "ack":
        p.add_argument("--at", help="the platform's acknowledgment time (ISO 8601)")
    if name == "effect":
        p.add_argument(
            "--item",
            action="append",
            metavar="ID=EFFECT[:CC,..]",
            help="removed_globally | restricted:VN | declined | not_found | "
            "already_removed | needs_more_info (repeatable)",
        )
        p.add_argument("--item-reason", help="the platform's reason for these items")
        p.add_argument("--effects-file", help="JSON array of item effects")
    if name == "info":
        p.add_argument("--question")
        p.add_argument("--answer")
    if name == "appeal":
        p.add_argument(
            "--type",
            dest="appellant_type",
            required=True,
            choices=["content_owner", "platform", "authority"],
        )
        p.add_argument("--items", required=True, help="comma-separated item ids")
        p.add_argument("--grounds", required=True)
    if name == "decide":
        p.add_argument(
            "--outcome", required=True, choices=["upheld", "reversed", "partially_reversed"]
        )
        p.add_argument("--items", help="reversed item ids (partially_reversed)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="starter.py",
        description="Submit and drive authority requests (Docket).",
        epilog="Exit codes: 0 ok, 1 refused, 2 bad input, 3 unknown request, 4 conflict, "
        "5 Temporal unreachable (safe to send again), 6 Temporal refused this client.",
    )
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check request files offline (no Temporal)")
    p.add_argument("files", nargs="+", metavar="FILE", help=".json (object or array) or .jsonl")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_validate)

    p = sub.add_parser("submit", help="start one workflow per request (idempotent, signed)")
    p.add_argument("files", nargs="+", metavar="FILE")
    _add_identity(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_submit)

    for name, help_text in COMMAND_HELP.items():
        p = sub.add_parser(name, help=help_text)
        _add_command_options(p, name)
        p.add_argument("--json", action="store_true")
        p.add_argument("--update-id", help="idempotency key for this command (retries reuse it)")
        p.set_defaults(run=cmd_command)

    p = sub.add_parser(
        "sign", help="print a signed command or submission for another Temporal client"
    )
    signs = p.add_subparsers(dest="sign_cmd", required=True, metavar="COMMAND")
    q = signs.add_parser("submit", help="sign one request file (the start input)")
    q.add_argument("file", metavar="FILE")
    _add_identity(q)
    q.set_defaults(run=cmd_sign, trigger="submit")
    for name, help_text in COMMAND_HELP.items():
        q = signs.add_parser(name, help=help_text)
        _add_command_options(q, name)
        q.set_defaults(run=cmd_sign)

    for name, func, help_text in (
        ("status", cmd_status, "a request's state, deadlines and items"),
        ("timeline", cmd_timeline, "a request's audit entries in order"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("request", metavar="REQUEST")
        p.add_argument("--json", action="store_true")
        p.set_defaults(run=func)

    p = sub.add_parser("list", help="list requests by state, platform, authority, SLA")
    p.add_argument("--state")
    p.add_argument("--platform")
    p.add_argument("--authority")
    p.add_argument("--breached", action="store_true", help="SLA breached at some point")
    p.add_argument("--overdue", action="store_true", help="open and past their due time")
    p.add_argument("--open", action="store_true", help="still running")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_list)

    p = sub.add_parser("triggers", help="the lifecycle table, or what is allowed in a state")
    p.add_argument("state", nargs="?")
    p.set_defaults(run=cmd_triggers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        reference = default_reference()
        outcome = args.run(args, reference)
        if asyncio.iscoroutine(outcome):
            outcome = asyncio.run(outcome)
        return int(outcome)
    except ReferenceError as exc:
        print(f"docket: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DocketError as exc:
        if getattr(args, "json", False):
            _print_json({"error": str(exc), "type": type(exc).__name__})
        else:
            print(f"docket: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def run() -> None:
    """The script entry: exit with main()'s code without interpreter finalisation, during
    which the Temporal core runtime's threads can abort the process (SIGABRT/SIGSEGV, exit
    134/139 instead of 5 after a failed connection, seen in about 1 run in 6)."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
