"""``python -m docket.keys`` (``./run keys``): keys and credentials for an organization's admin.

    ca-init          an organization's CA key pair (passphrase-protected); prints the
                     [[organization]] stanza for the operator's trust file
    new              an official's key pair
    issue            sign a credential (OpenSSH user certificate) for an official's key
    revoke           append a key or fingerprint to the trust file's revocations
    allowed-signers  export the trust roots for stock `ssh-keygen -Y verify -f`
    revoked-keys     export the revocations for `ssh-keygen -Y verify -r` (a KRL or key list)
    inspect          show a credential (and, with --trust, whether Docket accepts it)

Passphrases: asked on the terminal (twice for a new key), else taken from
DOCKET_CA_PASSPHRASE (CA keys) or DOCKET_KEY_PASSPHRASE (officials' keys); --no-passphrase
writes an unprotected key (demos and tests only). Exit codes: 0 done, 2 refused or failed
(the message says why). See docs/identity.md.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import ssh as ssh_serialization

from audit.canonical import MAX_SAFE_INT
from docket import sshsig
from docket.credentials import (
    ACTOR_ID_RE,
    GRANTABLE_ROLES,
    NAMESPACE,
    ROLES_EXTENSION,
    IdentityError,
    Organization,
    TrustFileError,
    TrustRoots,
    check_certificate,
    format_time,
    load_trust,
    parse_roles,
)
from docket.lifecycle import Role
from docket.signer import SignerError, load_certificate, load_private_key
from docket.text import terminal

__all__ = [
    "KEY_TYPES",
    "KeysError",
    "allowed_signers_text",
    "generate_key",
    "issue_certificate",
    "main",
    "organization_stanza",
    "parse_validity",
    "private_key_text",
    "public_key_line_of",
]

ENV_CA_PASSPHRASE = "DOCKET_CA_PASSPHRASE"
ENV_KEY_PASSPHRASE = "DOCKET_KEY_PASSPHRASE"
KEY_TYPES = ("ed25519", "ecdsa", "rsa")
MAX_VALIDITY = timedelta(days=3 * 366)
BACKDATE = timedelta(minutes=5)  # a credential starts a little early: signers' clocks drift


class KeysError(Exception):
    """A refused or failed admin action; the message says what and how to fix it."""


# --- the library part (tests and the demo use it directly) ------------------------------------


def generate_key(key_type: str = "ed25519") -> sshsig.PrivateKey:
    """A new private key: ed25519 (recommended), ecdsa (P-256) or rsa (3072 bits)."""
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise KeysError(f"key type {key_type!r}: choose one of {', '.join(KEY_TYPES)}")


def private_key_text(key: sshsig.PrivateKey, passphrase: str | None) -> bytes:
    """The OpenSSH private key file (bcrypt + AES-256 when a passphrase is given)."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    )


def public_key_line_of(key: sshsig.PrivateKey | sshsig.VerifyingKey, comment: str = "") -> str:
    """The OpenSSH ``.pub`` line of a key (of a private key: its public half)."""
    public = (
        key.public_key()
        if isinstance(
            key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        )
        else key
    )
    line = public.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode("ascii")
    return f"{line} {comment}" if comment else line


def parse_validity(text: str) -> timedelta:
    """``90d``, ``12w``, ``36h``, ``30m`` (at most three years)."""
    match = re.fullmatch(r"([1-9][0-9]{0,5})([mhdw])", text.strip())
    if not match:
        raise KeysError(f"validity {text!r}: write a number and a unit, e.g. 90d, 12w, 36h, 30m")
    amount, unit = int(match.group(1)), match.group(2)
    span = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}.get(
        unit, timedelta(weeks=1)
    )
    validity = amount * span
    if validity > MAX_VALIDITY:
        raise KeysError(f"validity {text!r} is longer than three years; issue shorter ones")
    return validity


def _roles(text: str) -> tuple[Role, ...]:
    try:
        return parse_roles(text.replace(" ", "").encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        message = str(exc).replace("its roles@docket extension", "--roles")
        raise KeysError(message) from None


def issue_certificate(
    ca_key: sshsig.PrivateKey,
    subject: str,
    actor_id: str,
    roles: Sequence[Role],
    valid_after: datetime,
    valid_before: datetime,
    serial: int,
) -> str:
    """A credential: an OpenSSH user certificate for the public key line ``subject``, key id
    and only principal ``actor_id``, ``roles@docket`` = the roles, signed by ``ca_key``."""
    if not ACTOR_ID_RE.match(actor_id):
        raise KeysError(
            f"actor id {actor_id!r}: lowercase letters, digits and . _ : @ -, at most 128"
        )
    if not roles:
        raise KeysError("a credential needs at least one role")
    if not 0 <= serial <= MAX_SAFE_INT:
        raise KeysError(f"serial {serial}: between 0 and 2**53")
    if valid_before <= valid_after:
        raise KeysError("the validity window is empty")
    try:
        key, _ = sshsig.parse_public_key_line(subject, "the official's public key")
    except sshsig.SshsigError as exc:
        raise KeysError(exc.message) from None
    if key.application is not None:
        raise KeysError(
            "this tool cannot certify FIDO (sk-) keys; issue with stock ssh-keygen -s CA -I "
            f"{actor_id} -n {actor_id} -V ... -O clear -O extension:{ROLES_EXTENSION}=... KEY.pub"
        )
    builder = (
        ssh_serialization.SSHCertificateBuilder()
        .public_key(key.key)
        .serial(serial)
        .type(ssh_serialization.SSHCertificateType.USER)
        .key_id(actor_id.encode("ascii"))
        .valid_principals([actor_id.encode("ascii")])
        .valid_after(int(valid_after.timestamp()))
        .valid_before(int(valid_before.timestamp()))
        .add_extension(ROLES_EXTENSION.encode(), ",".join(r.value for r in roles).encode())
    )
    certificate = builder.sign(ca_key)
    return certificate.public_bytes().decode("ascii") + f" {actor_id}"


def organization_stanza(
    org_id: str,
    name: str,
    acts_for: Sequence[str],
    may_grant: Sequence[Role],
    ca_key_line: str,
    actors: Sequence[str] = ("*",),
) -> str:
    """The [[organization]] entry for the trust file (checked by the trust model)."""
    try:
        Organization(
            id=org_id,
            name=name,
            acts_for=tuple(acts_for),
            may_grant=tuple(may_grant),
            ca_keys=(ca_key_line,),
            actors=tuple(actors),
        )
    except ValueError as exc:
        raise KeysError(_first_error(exc)) from None
    return (
        "[[organization]]\n"
        f"id = {_toml_string(org_id)}\n"
        f"name = {_toml_string(name)}\n"
        f"acts_for = [{', '.join(_toml_string(a) for a in acts_for)}]\n"
        f"may_grant = [{', '.join(_toml_string(r.value) for r in may_grant)}]\n"
        f"actors = [{', '.join(_toml_string(a) for a in actors)}]\n"
        f"ca_keys = [{_toml_string(ca_key_line)}]\n"
    )


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = []
        for error in errors(include_url=False):
            where = ".".join(str(p) for p in error["loc"])
            parts.append(f"{where}: {str(error['msg']).removeprefix('Value error, ')}")
        return "; ".join(parts)
    return str(exc)


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON escaping is valid TOML for these characters)."""
    out = ['"']
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


# --- files -------------------------------------------------------------------------------------


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (never overwrite), write, fsync."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise KeysError(f"{path} exists already; remove it or choose another --out") from None
    except OSError as exc:
        raise KeysError(f"cannot create {path} ({exc.strerror})") from None
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_file(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` (same directory temp file, fsync, rename, fsync dir)."""
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _new_passphrase(args: argparse.Namespace, env_name: str, what: str) -> str | None:
    if args.no_passphrase:
        print(f"warning: {what} is written WITHOUT a passphrase", file=sys.stderr)
        return None
    from_env = os.environ.get(env_name)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise KeysError(
            f"{what} needs a passphrase: run in a terminal, set {env_name}, or give "
            "--no-passphrase (demos and tests only)"
        )
    first = getpass.getpass(f"New passphrase for {what}: ")
    if len(first) < 10:
        raise KeysError("the passphrase is shorter than 10 characters")
    if getpass.getpass("Same passphrase again: ") != first:
        raise KeysError("the two passphrases differ")
    return first


def _load_ca_key(path: Path) -> sshsig.PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeysError(f"cannot read the CA key {path} ({exc.strerror})") from None
    try:
        return load_private_key(
            data,
            str(path),
            passphrase=os.environ.get(ENV_CA_PASSPHRASE),
            prompt=(lambda label: getpass.getpass(f"Passphrase for {label}: "))
            if sys.stdin.isatty()
            else None,
        )
    except SignerError as exc:
        raise KeysError(str(exc).replace("DOCKET_KEY_PASSPHRASE", ENV_CA_PASSPHRASE)) from None


def _load_trust(path: str) -> TrustRoots:
    try:
        return load_trust(path)
    except TrustFileError as exc:
        raise KeysError(str(exc)) from None


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise KeysError(f"cannot read {what} {path} ({reason})") from None


# --- commands ----------------------------------------------------------------------------------


def cmd_ca_init(args: argparse.Namespace) -> None:
    may_grant = _roles(args.may_grant)
    out_dir = Path(args.out)
    private_path = out_dir / f"{args.org}-ca"
    public_path = out_dir / f"{args.org}-ca.pub"
    key = generate_key(args.type)
    comment = f"{args.org}-ca-{datetime.now(UTC):%Y%m%d}"
    public_line = public_key_line_of(key, comment)
    stanza = organization_stanza(
        args.org, args.name, args.acts_for, may_grant, public_line, args.actors or ("*",)
    )
    passphrase = _new_passphrase(args, ENV_CA_PASSPHRASE, f"the CA key of {args.org}")
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_new(private_path, private_key_text(key, passphrase), 0o600)
    _write_new(public_path, (public_line + "\n").encode(), 0o644)
    print(f"# CA key of {args.org}: {private_path} (keep it offline), public {public_path}")
    print(f"# fingerprint {sshsig.parse_public_key_line(public_line)[0].fingerprint}")
    print("# add this entry to the operator's trust file (DOCKET_TRUST_FILE):")
    print(stanza, end="")


def cmd_new(args: argparse.Namespace) -> None:
    if not ACTOR_ID_RE.match(args.actor):
        raise KeysError(
            f"actor id {args.actor!r}: lowercase letters, digits and . _ : @ -, at most 128"
        )
    out_dir = Path(args.out)
    private_path = out_dir / args.actor
    public_path = out_dir / f"{args.actor}.pub"
    key = generate_key(args.type)
    public_line = public_key_line_of(key, args.actor)
    passphrase = _new_passphrase(args, ENV_KEY_PASSPHRASE, f"the key of {args.actor}")
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_new(private_path, private_key_text(key, passphrase), 0o600)
    _write_new(public_path, (public_line + "\n").encode(), 0o644)
    fingerprint = sshsig.parse_public_key_line(public_line)[0].fingerprint
    print(f"key of {args.actor}: {private_path} (private), {public_path} (public) {fingerprint}")
    print(f"next: send {public_path} to your organization's administrator for a credential")


def _parse_time(text: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise KeysError(f"{what} {text!r}: write an ISO time, e.g. 2026-03-02T09:00:00Z") from None
    if moment.tzinfo is None:
        raise KeysError(f"{what} {text!r}: give a UTC offset, e.g. 2026-03-02T09:00:00Z")
    return moment.astimezone(UTC)


def cmd_issue(args: argparse.Namespace) -> None:
    roles = _roles(args.roles)
    validity = parse_validity(args.validity)
    subject_path = Path(args.key)
    subject = _read_text(subject_path, "the official's public key").strip()
    ca_key = _load_ca_key(Path(args.ca))
    ca_line = public_key_line_of(ca_key)
    ca_fp = sshsig.parse_public_key_line(ca_line)[0].fingerprint
    if args.trust:
        trust = _load_trust(args.trust)
        org = trust.organization_for_ca(ca_fp)
        if org is None:
            raise KeysError(
                f"the CA key {args.ca} ({ca_fp}) is not in {args.trust}: add its organization "
                "first (./run keys ca-init prints the entry)"
            )
        refused = [r.value for r in roles if r not in org.may_grant]
        if refused:
            raise KeysError(
                f"{org.id} may not grant {', '.join(refused)} (its may_grant: "
                f"{', '.join(r.value for r in org.may_grant)})"
            )
        if not org.may_certify(args.actor):
            raise KeysError(
                f"{org.id} may certify only actors matching {', '.join(org.actors)}, "
                f"not {args.actor!r}"
            )
    start = _parse_time(args.not_before, "--not-before") if args.not_before else None
    valid_after = start or (datetime.now(UTC) - BACKDATE).replace(microsecond=0)
    valid_before = valid_after + validity + (BACKDATE if start is None else timedelta(0))
    serial = args.serial if args.serial is not None else secrets.randbelow(MAX_SAFE_INT)
    line = issue_certificate(ca_key, subject, args.actor, roles, valid_after, valid_before, serial)
    out = Path(args.out) if args.out else _cert_path_for(subject_path)
    _write_new(out, (line + "\n").encode(), 0o644)
    print(
        f"credential for {args.actor} ({', '.join(r.value for r in roles)}), serial {serial}, "
        f"valid {format_time(valid_after)} to {format_time(valid_before)}: {out}"
    )


def _cert_path_for(public_path: Path) -> Path:
    name = public_path.name
    stem = name[: -len(".pub")] if name.endswith(".pub") else name
    return public_path.with_name(f"{stem}-cert.pub")


def _revocation_target(text: str) -> tuple[str, str]:
    """(value for the trust file, fingerprint) of a fingerprint, key file or certificate."""
    if re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", text):
        return text, text
    path = Path(text)
    if not path.is_file():
        raise KeysError(
            f"{text!r} is neither a SHA256: fingerprint nor a public key or certificate file"
        )
    line = _read_text(path, "the key file").strip()
    first = line.split(" ", 1)[0]
    if first.endswith(sshsig.CERT_SUFFIX):
        try:
            cert = load_certificate(path)
        except SignerError as exc:
            raise KeysError(str(exc)) from None
        key_line = sshsig.public_key_line(cert.key.blob)
        return key_line, cert.key.fingerprint
    try:
        key, _ = sshsig.parse_public_key_line(line, str(path))
    except sshsig.SshsigError as exc:
        raise KeysError(exc.message) from None
    return sshsig.public_key_line(key.blob), key.fingerprint


def cmd_revoke(args: argparse.Namespace) -> None:
    trust_path = Path(args.trust)
    trust = _load_trust(args.trust)
    value, fingerprint = _revocation_target(args.key)
    if trust.revocation(fingerprint) is not None:
        print(f"{fingerprint} is revoked already in {trust_path}; nothing changed")
        return
    raw = trust_path.read_bytes()
    if isinstance(tomllib.loads(raw.decode("utf-8")).get("revoked"), list) and re.search(
        rb"(?m)^\s*revoked\s*=", raw
    ):
        raise KeysError(
            f"{trust_path} lists revocations as 'revoked = [...]'; rewrite them as "
            '[[revoked]] tables (key = "...") so this tool can append to them'
        )
    now = datetime.now(UTC).replace(microsecond=0)
    stanza = f"\n[[revoked]]\nkey = {_toml_string(value)}\n"
    if args.reason:
        stanza += f"reason = {_toml_string(args.reason)}\n"
    stanza += f"revoked_at = {format_time(now)}\n"
    new = raw + (b"" if raw.endswith(b"\n") or not raw else b"\n") + stanza.encode("utf-8")
    candidate = Path(tempfile.mkdtemp()) / "trust.toml"
    try:
        candidate.write_bytes(new)
        after = _load_trust(str(candidate))
    finally:
        shutil.rmtree(candidate.parent, ignore_errors=True)
    if after.revocation(fingerprint) is None:  # pragma: no cover - defensive
        raise KeysError("the revocation did not take; the trust file was not changed")
    _replace_file(trust_path, new)
    owner = trust.organization_for_ca(fingerprint)
    what = f"the CA key of {owner.id}" if owner else "the key"
    print(
        f"revoked {what} {fingerprint} in {trust_path}; workers pick it up at their next "
        "trust refresh (docs/identity.md)"
    )


def allowed_signers_text(trust: TrustRoots) -> str:
    """An allowed_signers file: each trusted CA key for its organization's actor patterns."""
    lines = [
        "# Docket trust roots for ssh-keygen -Y verify "
        f"(trust digest {trust.digest}); one line per organization CA key",
    ]
    for org in trust.organizations:
        for line, fp in zip(org.ca_keys, org.ca_fingerprints, strict=True):
            if trust.revocation(fp) is not None:
                lines.append(f"# {org.id}: CA key {fp} is revoked and left out")
                continue
            key_type, body = line.split(" ")[:2]
            lines.append(f"# {org.id}: {terminal(org.name)}")
            lines.append(
                f'{",".join(org.actors)} cert-authority,namespaces="{NAMESPACE}" '
                f"{key_type} {body} {org.id}"
            )
    return "\n".join(lines) + "\n"


def cmd_allowed_signers(args: argparse.Namespace) -> None:
    _emit(allowed_signers_text(_load_trust(args.trust)), args.out)


def _emit(text: str, out: str | None) -> None:
    if out:
        _replace_or_create(Path(out), text.encode("utf-8"))
    else:
        sys.stdout.write(text)


def _replace_or_create(path: Path, data: bytes) -> None:
    if path.exists():
        _replace_file(path, data)
    else:
        _write_new(path, data, 0o644)


def cmd_revoked_keys(args: argparse.Namespace) -> None:
    trust = _load_trust(args.trust)
    if args.format == "keys":
        missing = [r.fingerprint for r in trust.revoked if r.key is None]
        if missing:
            raise KeysError(
                "these revocations have only a fingerprint, which a key list cannot hold: "
                f"{', '.join(missing)}; use --format krl"
            )
        _emit("".join(f"{r.key}\n" for r in trust.revoked), args.out)
        return
    spec = "".join(
        f"key: {r.key}\n" if r.key else f"hash: {r.fingerprint}\n" for r in trust.revoked
    )
    if args.format == "spec":
        _emit(spec, args.out)
        return
    if not args.out:
        raise KeysError("a KRL is binary: give --out FILE")
    ssh_keygen = shutil.which("ssh-keygen")
    if ssh_keygen is None:
        raise KeysError("making a KRL needs ssh-keygen (OpenSSH); or use --format keys|spec")
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "revoked.spec"
        spec_path.write_text(spec or "# nothing revoked\n", "utf-8")
        krl_tmp = Path(tmp) / "revoked.krl"
        done = subprocess.run(
            [ssh_keygen, "-q", "-k", "-f", str(krl_tmp), str(spec_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise KeysError(f"ssh-keygen -k failed: {done.stderr.strip()}")
        _replace_or_create(Path(args.out), krl_tmp.read_bytes())
    print(f"{len(trust.revoked)} revoked key(s) written to {args.out} (KRL)")


def cmd_inspect(args: argparse.Namespace) -> int:
    try:
        cert = load_certificate(Path(args.certificate))
    except SignerError as exc:
        raise KeysError(str(exc)) from None
    roles_raw = cert.extension(ROLES_EXTENSION)
    after = _cert_time(cert.valid_after)
    before = _cert_time(cert.valid_before)
    print(f"actor:        {terminal(cert.key_id)}")
    print(f"principals:   {terminal(', '.join(cert.principals) or '(any)')}")
    roles = "(none)" if roles_raw is None else roles_raw.decode("ascii", "replace")
    print(f"roles:        {terminal(roles)}")
    print(f"valid:        {after} to {before}")
    print(f"serial:       {cert.serial}")
    print(f"key:          {cert.key.description} {cert.key.fingerprint}")
    print(f"signing CA:   {cert.ca_key.description} {cert.ca_key.fingerprint}")
    if cert.critical_options:
        names = ", ".join(terminal(n) for n, _ in cert.critical_options)
        print(f"critical:     {names}")
    if not args.trust:
        print("organization: (give --trust FILE: the organization is whoever owns the CA key)")
        return 0
    trust = _load_trust(args.trust)
    org = trust.organization_for_ca(cert.ca_key.fingerprint)
    print(f"organization: {f'{org.id} ({terminal(org.name)})' if org else '(not trusted)'}")
    at = _parse_time(args.at, "--at") if args.at else datetime.now(UTC)
    try:
        check_certificate(cert, trust, at)
    except IdentityError as exc:
        print(f"verdict:      REFUSED at {format_time(at)} ({exc.code}): {terminal(exc.message)}")
        return 2
    print(f"verdict:      accepted at {format_time(at)}")
    return 0


def _cert_time(seconds: int) -> str:
    if seconds >= 2**63:
        return "forever"
    try:
        return format_time(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds))
    except OverflowError:
        return "forever"


# --- argument parsing --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="./run keys", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    roles = ", ".join(r.value for r in GRANTABLE_ROLES)

    p = sub.add_parser("ca-init", help="an organization's CA key pair and trust-file entry")
    p.add_argument("--org", required=True, help="organization id, e.g. mic")
    p.add_argument("--name", required=True, help="display name")
    p.add_argument(
        "--acts-for",
        action="append",
        required=True,
        help="authority:<id>, platform:<id> or any (repeatable)",
    )
    p.add_argument("--may-grant", required=True, help=f"comma-separated roles ({roles})")
    p.add_argument("--actors", action="append", help="actor id patterns it may certify (default *)")
    p.add_argument("--type", choices=KEY_TYPES, default="ed25519")
    p.add_argument("--out", default=".", help="directory for ORG-ca and ORG-ca.pub")
    p.add_argument("--no-passphrase", action="store_true", help="demos and tests only")

    p = sub.add_parser("new", help="an official's key pair")
    p.add_argument("--actor", required=True, help="actor id, e.g. tran.thi.binh")
    p.add_argument("--type", choices=KEY_TYPES, default="ed25519")
    p.add_argument("--out", default=".", help="directory for ACTOR and ACTOR.pub")
    p.add_argument("--no-passphrase", action="store_true", help="demos and tests only")

    p = sub.add_parser("issue", help="sign a credential for an official's public key")
    p.add_argument("--ca", required=True, help="the organization's CA private key")
    p.add_argument("--key", required=True, help="the official's public key (ACTOR.pub)")
    p.add_argument("--actor", required=True, help="actor id (key id and principal)")
    p.add_argument("--roles", required=True, help=f"comma-separated ({roles})")
    p.add_argument("--validity", default="90d", help="e.g. 90d, 12w, 36h (default 90d)")
    p.add_argument("--not-before", help="start (ISO time with offset); default now")
    p.add_argument("--serial", type=int, help="default: random")
    p.add_argument("--trust", help="trust file: refuse roles the organization may not grant")
    p.add_argument("--out", help="default: ACTOR-cert.pub beside the public key")

    p = sub.add_parser("revoke", help="revoke a key (user or CA) in the trust file")
    p.add_argument("--trust", required=True, help="the trust file to append to")
    p.add_argument("key", help="SHA256:fingerprint, or a .pub / -cert.pub file")
    p.add_argument("--reason", help="why (recorded in the trust file)")

    p = sub.add_parser("allowed-signers", help="trust roots for ssh-keygen -Y verify -f")
    p.add_argument("--trust", required=True)
    p.add_argument("--out", help="default: standard output")

    p = sub.add_parser("revoked-keys", help="revocations for ssh-keygen -Y verify -r")
    p.add_argument("--trust", required=True)
    p.add_argument("--format", choices=("krl", "keys", "spec"), default="krl")
    p.add_argument("--out", help="required for krl; default standard output otherwise")

    p = sub.add_parser("inspect", help="show a credential")
    p.add_argument("certificate", help="a -cert.pub file")
    p.add_argument("--trust", help="also say whether Docket accepts it")
    p.add_argument("--at", help="check at this time (ISO with offset); default now")
    return parser


COMMANDS = {
    "ca-init": cmd_ca_init,
    "new": cmd_new,
    "issue": cmd_issue,
    "revoke": cmd_revoke,
    "allowed-signers": cmd_allowed_signers,
    "revoked-keys": cmd_revoked_keys,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "inspect":
            return cmd_inspect(args)
        COMMANDS[args.command](args)
    except KeysError as exc:
        print(f"keys {args.command}: {terminal(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"keys {args.command}: interrupted", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
