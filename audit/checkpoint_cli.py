"""The checkpoint subcommands of ``python -m audit`` (registered by audit.cli):

    keygen NAME --out FILE [--witness]        a log key (or a witness key) and its vkey
    checkpoint [--sources ...] [--state DIR]  sign a checkpoint of everything new, now
    checkpoint --request-from N               the tlog-witness request from size N
    prove REQUEST_ID [PATHS] [--out FILE]      a proof bundle for one request
    verify-bundle FILE --key PUB               check a bundle offline
    witness --key FILE --log-key PUB --state DIR (--request FILE | --log-dir DIR)
    verify ... --checkpoint FILE --key PUB     (options added to `verify`)

Exit codes: 0 OK, 1 findings / refused, 2 bad arguments or unreadable input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from audit.note import ALG_COSIGNATURE_V1, ALG_ED25519, NoteError

__all__ = [
    "add_verify_options",
    "register_all",
    "run_verify_checkpoint",
]

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _fail(msg: str) -> int:
    print(f"audit: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _config(args: argparse.Namespace) -> Any:
    from audit.checkpoint import CheckpointConfig, parse_sources

    base = CheckpointConfig.from_env()
    sources = parse_sources(",".join(args.sources), where="--sources") if args.sources else None
    state = Path(args.state) if args.state else base.state_dir
    return CheckpointConfig(state, sources or base.sources)


def _add_state(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state",
        metavar="DIR",
        help="the checkpointer's directory (default: $DOCKET_CHECKPOINT_DIR or var/checkpoints)",
    )
    p.add_argument(
        "--sources",
        action="append",
        metavar="LABEL=DIR",
        help="audit directories to checkpoint, one per worker host (repeat, or comma-separate; "
        "default: $DOCKET_CHECKPOINT_SOURCES, else local=$DOCKET_AUDIT_DIR)",
    )


# -- keygen -----------------------------------------------------------------------------------


def _run_keygen(args: argparse.Namespace) -> int:
    from audit.note import generate_key

    out = Path(args.out)
    if out.exists():
        return _fail(f"{out} exists; refusing to overwrite a key")
    try:
        key = generate_key(args.name, ALG_COSIGNATURE_V1 if args.witness else ALG_ED25519)
    except NoteError as exc:
        return _fail(str(exc))
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key.encode())
        pub = out.with_name(out.name + ".pub")
        pub.write_text(key.verifier().vkey() + "\n", encoding="ascii")
    except OSError as exc:
        return _fail(f"cannot write the key: {exc}")
    print(key.verifier().vkey())
    print(f"private key: {out} (mode 600); public key (vkey): {pub}", file=sys.stderr)
    return EXIT_OK


def _register_keygen(sub: Any) -> None:
    p = sub.add_parser("keygen", help="create an Ed25519 log key or witness key (C2SP note)")
    p.add_argument("name", metavar="NAME", help="the log's origin, e.g. docket.example.org/audit")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the private key")
    p.add_argument("--witness", action="store_true", help="a witness (cosignature/v1) key")
    p.set_defaults(run=_run_keygen)


# -- checkpoint -------------------------------------------------------------------------------


def _run_checkpoint(args: argparse.Namespace) -> int:
    from audit.checkpoint import (
        CheckpointError,
        add_checkpoint_request,
        make_checkpoint,
        rebuild_tree,
        signer_from_env,
    )
    from audit.note import load_signer

    try:
        config = _config(args)
        key = load_signer(args.key, alg=ALG_ED25519) if args.key else signer_from_env()
        if args.request_from is not None:
            sys.stdout.write(add_checkpoint_request(config, key.verifier(), args.request_from))
            return EXIT_OK
        if args.rebuild:
            n = rebuild_tree(config, key.verifier())
            print(f"rebuilt {config.tree_dir}: {n} leaves, consistent with the last checkpoint")
            return EXIT_OK
        result = make_checkpoint(config, key)
    except (CheckpointError, NoteError, OSError) as exc:
        code = EXIT_FINDINGS if type(exc).__name__ == "CheckpointRefused" else EXIT_USAGE
        print(f"audit: checkpoint: {exc}", file=sys.stderr)
        return code
    for problem in result.problems:
        print(f"audit: checkpoint: warning: {problem}", file=sys.stderr)
    if args.json:
        out = {
            "origin": result.origin,
            "size": result.size,
            "root_hash": result.root.hex(),
            "previous_size": result.previous_size,
            "new_entries": result.new_entries,
            "signed": result.signed,
            "checkpoint": result.checkpoint_path,
            "problems": result.problems,
            "seconds": round(result.seconds, 3),
        }
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif result.signed:
        print(
            f"signed checkpoint {result.origin} size {result.size} (+{result.new_entries} "
            f"entries, consistent with size {result.previous_size}) -> {result.checkpoint_path}"
        )
    else:
        print(f"nothing new: the checkpoint of size {result.size} stands")
    return EXIT_OK


def _register_checkpoint(sub: Any) -> None:
    p = sub.add_parser(
        "checkpoint",
        help="sign a checkpoint of every entry written so far (needs the log key)",
        description="Take the new complete lines of every source segment into the log's Merkle "
        "tree and sign a C2SP checkpoint consistent with the previous one.",
    )
    _add_state(p)
    p.add_argument(
        "--key", metavar="FILE", help="the log's private key file (default: $DOCKET_LOG_KEY)"
    )
    p.add_argument(
        "--request-from",
        type=int,
        metavar="N",
        help="print the tlog-witness add-checkpoint request from size N (signs nothing)",
    )
    p.add_argument(
        "--rebuild", action="store_true", help="recompute the tree files from the segments"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=_run_checkpoint)


# -- prove / verify-bundle --------------------------------------------------------------------


def _load_vkey(spec: str) -> Any:
    from audit.note import load_verifier

    return load_verifier(spec)


def _run_prove(args: argparse.Namespace) -> int:
    from audit.bundle import build_bundle
    from audit.checkpoint import CheckpointError

    try:
        config = _config(args)
        key = _load_vkey(args.key) if args.key else None
        if key is None:
            from audit.checkpoint import signer_from_env

            key = signer_from_env().verifier()
        bundle = build_bundle(args.request_id, config, key, paths=args.paths)
    except (CheckpointError, NoteError, OSError) as exc:
        return _fail(str(exc))
    data = orjson.dumps(bundle, option=orjson.OPT_INDENT_2) + b"\n"
    out = Path(args.out or f"{args.request_id}.bundle.json")
    try:
        out.write_bytes(data)
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc}")
    print(
        f"{out}: {len(bundle['entries'])} entries of {args.request_id} with inclusion proofs in "
        f"{bundle['log_origin']} size {bundle['tree_size']}"
    )
    return EXIT_OK


def _register_prove(sub: Any) -> None:
    p = sub.add_parser("prove", help="write a self-contained proof bundle for one request")
    p.add_argument("request_id", metavar="REQUEST_ID")
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="segment files or directories (default: the checkpointer's configured sources)",
    )
    _add_state(p)
    p.add_argument("--key", metavar="PUB", help="the log's public key (vkey or file)")
    p.add_argument("--out", metavar="FILE", help="default: REQUEST_ID.bundle.json")
    p.set_defaults(run=_run_prove)


def _run_verify_bundle(args: argparse.Namespace) -> int:
    from audit.bundle import BundleFormatError, verify_bundle

    try:
        key = _load_vkey(args.key)
        witnesses = [_load_vkey(w) for w in args.witness or []]
        data = Path(args.file).read_bytes()
        result = verify_bundle(
            data, key, witnesses=witnesses, min_cosignatures=args.min_cosignatures
        )
    except (NoteError, OSError, BundleFormatError) as exc:
        return _fail(f"{args.file}: {exc}")
    if args.json:
        sys.stdout.write(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        for f in result.findings:
            print(f.render())
        s = result.to_dict()["summary"]
        head = f", head #{s['head']['sequence']} {s['head']['hash']}" if s["head"] else ""
        cos = f", cosigned by {', '.join(s['cosigned_by'])}" if s["cosigned_by"] else ""
        print(
            f"{s['status']}: {s['request_id']}: {s['entries']} entries included in "
            f"{s['origin']} size {s['tree_size']}{head}{cos}, {s['findings']} findings"
        )
    return EXIT_OK if result.ok else EXIT_FINDINGS


def _register_verify_bundle(sub: Any) -> None:
    p = sub.add_parser("verify-bundle", help="check a proof bundle offline")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--key", required=True, metavar="PUB", help="the log's vkey (or a file)")
    p.add_argument(
        "--witness", action="append", metavar="PUB", help="a trusted witness vkey (repeatable)"
    )
    p.add_argument(
        "--min-cosignatures",
        type=int,
        default=0,
        metavar="N",
        help="require N cosignatures from the --witness keys (default 0)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_run_verify_bundle)


# -- witness ----------------------------------------------------------------------------------


def _run_witness(args: argparse.Namespace) -> int:
    from audit.checkpoint import CheckpointConfig, CheckpointError, add_checkpoint_request
    from audit.note import load_signer
    from audit.witness import Witness, WitnessRefusal, parse_add_checkpoint

    try:
        wkey = load_signer(args.key, alg=ALG_COSIGNATURE_V1)
        log_key = _load_vkey(args.log_key)
        witness = Witness(wkey, args.state, [log_key])
        if args.request:
            request = parse_add_checkpoint(Path(args.request).read_bytes())
        else:
            latest = witness.latest(log_key.name)
            old = latest.checkpoint.size if latest is not None else 0
            log_config = CheckpointConfig(Path(args.log_dir), ())
            try:
                body = add_checkpoint_request(log_config, log_key, old)
            except CheckpointError:  # the log is smaller than what we saw: let the witness say
                note = log_config.checkpoint_path.read_text(encoding="utf-8")
                body = f"old {old}\n\n{note}"
            request = parse_add_checkpoint(body)
        line = witness.add_checkpoint(request)
    except WitnessRefusal as exc:
        print(f"audit: witness: REFUSED ({exc.code}): {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    except (NoteError, CheckpointError, OSError, UnicodeDecodeError) as exc:
        return _fail(str(exc))
    cosigned = request.checkpoint + line
    if args.out:
        Path(args.out).write_text(cosigned, encoding="utf-8")
    else:
        sys.stdout.write(cosigned)
    return EXIT_OK


def _register_witness(sub: Any) -> None:
    p = sub.add_parser(
        "witness",
        help="check a new checkpoint against the last one seen and cosign it",
        description="A witness: verifies the log's signature and a consistency proof from the "
        "last checkpoint it cosigned, keeps that state, and prints the checkpoint with its "
        "cosignature (C2SP tlog-cosignature, cosignature/v1). Refuses forks and rewinds.",
    )
    p.add_argument("--key", required=True, metavar="FILE", help="the witness's private key")
    p.add_argument("--log-key", required=True, metavar="PUB", help="the log's vkey (or file)")
    p.add_argument("--state", required=True, metavar="DIR", help="the witness's own state")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--request", metavar="FILE", help="a tlog-witness add-checkpoint body")
    src.add_argument(
        "--log-dir",
        metavar="DIR",
        help="the checkpointer's directory: its latest checkpoint, with a proof from the size "
        "this witness last cosigned",
    )
    p.add_argument("--out", metavar="FILE", help="write the cosigned checkpoint here")
    p.set_defaults(run=_run_witness)


def register_all(sub: Any) -> None:
    for register in (
        _register_keygen,
        _register_checkpoint,
        _register_prove,
        _register_verify_bundle,
        _register_witness,
    ):
        register(sub)


# -- verify --checkpoint ----------------------------------------------------------------------


def add_verify_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="a signed checkpoint: the log must hold exactly its entries (needs --key)",
    )
    p.add_argument("--key", metavar="PUB", help="the log's public key (vkey, or a file)")
    p.add_argument(
        "--order",
        metavar="FILE",
        help="the recorded order (default: order.jsonl beside the checkpoint)",
    )
    p.add_argument(
        "--tree",
        metavar="DIR",
        help="the checkpointer's tree directory, to name changed lines (default: beside "
        "the order index, if present)",
    )


def run_verify_checkpoint(args: argparse.Namespace, paths: list[str]) -> Any:
    """The completeness check for `verify`; returns a CompletenessResult or an int exit code."""
    from audit.checkpoint_verify import verify_completeness

    if not args.key:
        return _fail("--checkpoint needs --key (the log's public key)")
    try:
        key = _load_vkey(args.key)
        return verify_completeness(
            paths, args.checkpoint, key, order_file=args.order, tree_dir=args.tree
        )
    except NoteError as exc:
        return _fail(f"--key: {exc}")
    except OSError as exc:
        return _fail(f"cannot read {exc.filename}: {exc.strerror}")
