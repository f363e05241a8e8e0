"""Who may act: trust roots from the operator, credentials proven by signatures (pure checks).

A *credential* is an OpenSSH user certificate: key id and only principal = the actor id, the
roles in the extension ``roles@docket`` (comma-separated), a validity window and a serial,
signed by an organization's certification (CA) key. The organization is never read from the
certificate's text: it is whichever organization of the operator's trust file owns the CA key
that signed it, and that organization may grant only the roles its entry lists.

The trust file (TOML, path from ``DOCKET_TRUST_FILE``) is the deployment's configuration::

    signing_required_from = 2026-01-01T00:00:00Z    # earlier entries are "legacy, unsigned"

    [[organization]]
    id = "mic"
    name = "Bộ Thông tin và Truyền thông"
    acts_for = ["authority:mic"]                   # or "platform:facebook", or "any"
    may_grant = ["officer", "approver"]
    actors = ["*"]                                 # optional: actor ids its CA may certify
    ca_keys = ["ssh-ed25519 AAAAC3... mic-ca-2026"]

    [[revoked]]                                    # a user key or a CA key
    key = "SHA256:qmwKBLiVzKgNS6YNBgwqKRy3cfICt6A56sZT1lfEFUk"   # or the public key line
    reason = "laptop stolen"
    revoked_at = 2026-03-02T09:00:00Z

:func:`load_trust` reads it (I/O, for activities and CLIs) into :class:`TrustRoots`, a frozen,
JSON-serialisable model that travels through Temporal history. :func:`verify_signed` and
:func:`check_certificate` are pure and deterministic (the time is an argument): they run in
the workflow sandbox and in the offline audit tools alike.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from audit.canonical import MAX_SAFE_INT, canonical
from docket import sshsig
from docket.lifecycle import Role
from docket.text import UnsafeText, check_text

__all__ = [
    "ACTOR_ID_RE",
    "GRANTABLE_ROLES",
    "IDENTITY_CODES",
    "NAMESPACE",
    "ROLES_BY_PARTY",
    "ROLES_EXTENSION",
    "Credential",
    "IdentityError",
    "Organization",
    "RevokedKey",
    "TrustFileError",
    "TrustRoots",
    "check_certificate",
    "format_time",
    "load_trust",
    "parse_roles",
    "verify_signed",
]

NAMESPACE = "docket-command@v1"
ROLES_EXTENSION = "roles@docket"

IDENTITY_CODES = (
    "unsigned",
    "malformed_signature",
    "wrong_namespace",
    "bad_signature",
    "not_a_certificate",
    "unknown_key",
    "credential_expired",
    "credential_not_yet_valid",
    "key_revoked",
    "role_not_granted",
    "bad_credential",
)

# Roles a credential can carry. `system` is Docket itself and never a person's.
GRANTABLE_ROLES: tuple[Role, ...] = tuple(r for r in Role if r is not Role.SYSTEM)

PartyKind = Literal["authority", "platform", "any"]
# Which roles an organization may grant, by whom it acts for. Fixed in code, so a careless or
# hostile trust file can never let a platform's CA make an officer or an approver, nor an
# authority's CA make a platform liaison. `any`: operators, appeal boards, appellant registries.
ROLES_BY_PARTY: dict[PartyKind, frozenset[Role]] = {
    "authority": frozenset({Role.OFFICER, Role.APPROVER, Role.APPELLANT}),
    "platform": frozenset({Role.PLATFORM_LIAISON, Role.APPELLANT}),
    "any": frozenset({Role.APPEAL_REVIEWER, Role.OPERATOR, Role.AUDITOR, Role.APPELLANT}),
}

ACTOR_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._:@-]{0,127}$")  # as docket.models.Actor.id
_ACTS_FOR_RE = re.compile(r"^(?:any|(?:authority|platform):[a-z0-9][a-z0-9._-]{0,63})$")
_FINGERPRINT_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
_FOREVER = 2**64 - 1


class IdentityError(Exception):
    """A signature or credential Docket refuses. ``code`` is one of :data:`IDENTITY_CODES`;
    the message says what failed (actor, fingerprints, dates) and what would fix it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class TrustFileError(ValueError):
    """The trust file cannot be read or is invalid; the message names file, entry and field."""


def format_time(moment: datetime) -> str:
    """UTC, to the second, for messages: ``2026-03-02T09:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shown(value: str, limit: int = 80) -> str:
    """Untrusted text quoted for a message: cut short, every unsafe character escaped."""
    return sshsig.quoted(value, limit)


# --- the trust roots ---------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _safe_line(value: str) -> str:
    try:
        return check_text(value)
    except UnsafeText as exc:
        raise ValueError(str(exc)) from None


SafeLine = Annotated[str, StringConstraints(min_length=1, max_length=300)]


def _normalize_key_line(line: str, what: str) -> tuple[str, str]:
    """(normalized ``type base64 [comment]`` line, fingerprint) of a plain public key."""
    try:
        key, comment = sshsig.parse_public_key_line(line, what)
    except sshsig.SshsigError as exc:
        raise ValueError(exc.message) from None
    if comment:
        _safe_line(comment)
    return sshsig.public_key_line(key.blob, comment), key.fingerprint


class Organization(_Frozen):
    """An organization whose CA the operator trusts, and what that CA may vouch for."""

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    name: SafeLine
    acts_for: Annotated[tuple[str, ...], Field(min_length=1, max_length=100)]
    may_grant: Annotated[tuple[Role, ...], Field(min_length=1)]
    ca_keys: Annotated[tuple[str, ...], Field(min_length=1, max_length=20)]
    # Which actor ids this CA may certify, as OpenSSH patterns (`*`, `?`), the same patterns
    # an allowed_signers line carries. Default: any (the CA alone decides who its people are).
    actors: Annotated[
        tuple[Annotated[str, StringConstraints(pattern=r"^[a-z0-9._:@*?-]{1,128}$")], ...],
        Field(min_length=1, max_length=100),
    ] = ("*",)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _safe_line(value)

    @field_validator("acts_for")
    @classmethod
    def _acts_for(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for i, party in enumerate(value):
            if not _ACTS_FOR_RE.match(party):
                raise ValueError(
                    f"[{i}] {_shown(party)}: expected 'authority:<id>', 'platform:<id>' or 'any'"
                )
        kinds = {party.split(":")[0] for party in value}
        if len(kinds) > 1:
            raise ValueError(
                "mixes kinds of party (" + ", ".join(sorted(kinds)) + "): an organization acts "
                "for authorities, for platforms, or for any request; use one entry per kind"
            )
        if len(set(value)) != len(value):
            raise ValueError("lists a party twice")
        return value

    @field_validator("ca_keys")
    @classmethod
    def _ca_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        lines = []
        for i, line in enumerate(value):
            if line.strip().startswith("sk-"):
                raise ValueError(f"[{i}]: FIDO (sk-) keys cannot be CA keys; use ed25519")
            normalized, _ = _normalize_key_line(line, f"[{i}]")
            lines.append(normalized)
        return tuple(lines)

    @model_validator(mode="after")
    def _roles_fit_party(self) -> Organization:
        allowed = ROLES_BY_PARTY[self.party_kind]
        wrong = [role.value for role in self.may_grant if role not in allowed]
        if wrong:
            raise ValueError(
                f"may_grant: an organization acting for {self.party_kind!s} parties may not grant "
                f"{', '.join(wrong)} (it may grant: {', '.join(sorted(r.value for r in allowed))})"
            )
        if Role.SYSTEM in self.may_grant:  # pragma: no cover - excluded by ROLES_BY_PARTY
            raise ValueError("may_grant: 'system' is Docket's own role")
        return self

    @property
    def party_kind(self) -> PartyKind:
        kind = self.acts_for[0].split(":")[0]
        if kind == "authority":
            return "authority"
        if kind == "platform":
            return "platform"
        return "any"

    @cached_property
    def _actor_patterns(self) -> re.Pattern[str]:
        alternatives = (re.escape(p).replace(r"\*", ".*").replace(r"\?", ".") for p in self.actors)
        return re.compile("(?:" + "|".join(alternatives) + ")")

    def may_certify(self, actor_id: str) -> bool:
        """True if ``actor_id`` matches one of the ``actors`` patterns."""
        return self._actor_patterns.fullmatch(actor_id) is not None

    @cached_property
    def ca_fingerprints(self) -> tuple[str, ...]:
        return tuple(sshsig.parse_public_key_line(line)[0].fingerprint for line in self.ca_keys)


class RevokedKey(_Frozen):
    """A revoked user or CA key: its fingerprint, and the key line when the operator gave it
    (needed to export a plain revocation list for ``ssh-keygen -Y verify -r``).

    ``revoked_at``: the revocation applies from then on (a signature checked at an earlier
    time still holds); without it, the key is refused at any time."""

    fingerprint: Annotated[str, StringConstraints(pattern=_FINGERPRINT_RE.pattern)]
    key: str | None = None
    reason: SafeLine | None = None
    revoked_at: AwareDatetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        """Accept a bare string (fingerprint or key line) and derive the fingerprint."""
        if isinstance(data, str):
            data = {"key": data}
        if isinstance(data, dict) and isinstance(data.get("key"), str):
            data = dict(data)
            text = data["key"].strip()
            if text.startswith("SHA256:"):
                data.pop("key")
                if data.setdefault("fingerprint", text) != text:
                    raise ValueError("fingerprint and key disagree")
            else:
                line, fp = _normalize_key_line(text, "key")
                data["key"] = line
                if data.setdefault("fingerprint", fp) != fp:
                    raise ValueError(f"fingerprint {data['fingerprint']} is not the key's ({fp})")
        return data

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str | None) -> str | None:
        return None if value is None else _safe_line(value)

    @field_validator("revoked_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(UTC)


class TrustRoots(_Frozen):
    """The operator's trust configuration: which CA keys vouch for whom, and what is revoked."""

    signing_required_from: AwareDatetime
    organizations: Annotated[tuple[Organization, ...], Field(min_length=1)]
    revoked: tuple[RevokedKey, ...] = ()

    @field_validator("signing_required_from")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _unique(self) -> TrustRoots:
        seen_ids: set[str] = set()
        owners: dict[str, str] = {}
        for org in self.organizations:
            if org.id in seen_ids:
                raise ValueError(f"organization id {org.id!r} appears twice")
            seen_ids.add(org.id)
            for fp in org.ca_fingerprints:
                if fp in owners:
                    raise ValueError(
                        f"CA key {fp} is listed for both {owners[fp]!r} and {org.id!r}: a CA "
                        "key belongs to exactly one organization (it decides who vouched)"
                    )
                owners[fp] = org.id
        return self

    @cached_property
    def _ca_index(self) -> dict[str, Organization]:
        return {fp: org for org in self.organizations for fp in org.ca_fingerprints}

    @cached_property
    def _revoked_index(self) -> dict[str, RevokedKey]:
        return {entry.fingerprint: entry for entry in self.revoked}

    def organization_for_ca(self, ca_fingerprint: str) -> Organization | None:
        return self._ca_index.get(ca_fingerprint)

    def organization(self, organization_id: str) -> Organization | None:
        return next((o for o in self.organizations if o.id == organization_id), None)

    def revocation(self, fingerprint: str) -> RevokedKey | None:
        return self._revoked_index.get(fingerprint)

    @cached_property
    def digest(self) -> str:
        """``sha256:<hex>`` of the canonical JSON of the whole configuration: two snapshots
        with the same digest trust exactly the same keys."""
        body = canonical(self.model_dump(mode="json"))
        return "sha256:" + hashlib.sha256(body).hexdigest()


_TOP_LEVEL = {"signing_required_from", "organization", "revoked"}


def load_trust(path: str | Path) -> TrustRoots:
    """Read and check a trust file. Raises TrustFileError naming file, entry and field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TrustFileError(f"{path}: cannot read the trust file ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise TrustFileError(f"{path}: not UTF-8 (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise TrustFileError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _TOP_LEVEL)
    if unknown:
        raise TrustFileError(
            f"{path}: unknown top-level key(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(_TOP_LEVEL))}; did a key meant for the top level "
            "end up after a [[table]] header?)"
        )
    if "organization" in data:
        data["organizations"] = data.pop("organization")
    try:
        return TrustRoots.model_validate(data)
    except ValidationError as exc:
        raise TrustFileError(f"{path}: {_describe_errors(exc, data)}") from None


def _describe_errors(exc: ValidationError, data: dict[str, Any]) -> str:
    problems = []
    errors = exc.errors(include_url=False)
    for error in errors:
        loc = list(error["loc"])
        if error["type"] == "too_short" and any(
            len(other["loc"]) > len(loc) and list(other["loc"][: len(loc)]) == loc
            for other in errors
        ):
            continue  # only a consequence of an invalid item, which is reported itself
        parts: list[str] = []
        for i, part in enumerate(loc):
            if part == "organizations":
                part = "organization"
            if isinstance(part, int):
                parts[-1] += f"[{part}]"
                if i == 1 and loc[0] == "organizations":
                    org_id = _get(data, ["organizations", part, "id"])
                    if isinstance(org_id, str):
                        parts[-1] += f" (id {_shown(org_id, 40)})"
            else:
                parts.append(str(part))
        where = ".".join(parts) or "(file)"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "timezone_aware":
            message += " (write it with a UTC offset, e.g. 2026-01-01T00:00:00Z)"
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


def _get(data: Any, path: list[Any]) -> Any:
    for key in path:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return None
    return data


# --- credentials -------------------------------------------------------------------------------


class Credential(_Frozen):
    """A proven identity: who signed, with which roles, vouched for by which organization."""

    actor_id: str
    roles: tuple[Role, ...]
    organization_id: str
    organization_name: str
    acts_for: tuple[str, ...]
    key_fingerprint: str
    ca_fingerprint: str
    serial: int
    valid_after: AwareDatetime
    valid_before: AwareDatetime
    certificate: str

    def may_act_for(self, kind: Literal["authority", "platform"], party_id: str) -> bool:
        """True if the organization acts for this authority or platform (or for ``any``)."""
        return "any" in self.acts_for or f"{kind}:{party_id}" in self.acts_for

    @property
    def described(self) -> str:
        """``tran.thi.binh (approver) of mic, key SHA256:...`` for messages."""
        roles = ", ".join(r.value for r in self.roles)
        return f"{self.actor_id} ({roles}) of {self.organization_id}, key {self.key_fingerprint}"


def parse_roles(value: bytes | None) -> tuple[Role, ...]:
    """The roles of a ``roles@docket`` extension value (comma-separated). ValueError if bad."""
    if value is None:
        raise ValueError(f"it has no {ROLES_EXTENSION} extension (no roles)")
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"its {ROLES_EXTENSION} extension is not ASCII") from None
    names = text.split(",")
    roles: list[Role] = []
    allowed = ", ".join(r.value for r in GRANTABLE_ROLES)
    for name in names:
        try:
            role = Role(name)
        except ValueError:
            raise ValueError(
                f"its {ROLES_EXTENSION} extension names unknown role {_shown(name, 40)} "
                f"(known: {allowed})"
            ) from None
        if role is Role.SYSTEM:
            raise ValueError("it claims the 'system' role, which is Docket's own")
        if role in roles:
            raise ValueError(f"its {ROLES_EXTENSION} extension lists {role.value} twice")
        roles.append(role)
    return tuple(roles)


def _time(seconds: int) -> datetime | None:
    """A certificate time as UTC, or None if it lies beyond year 9999 ("forever")."""
    if seconds == _FOREVER or seconds > (_LAST_TIME - _EPOCH) // timedelta(seconds=1):
        return None
    return _EPOCH + timedelta(seconds=seconds)


def _bad(message: str) -> IdentityError:
    return IdentityError("bad_credential", message)


def check_certificate(
    certificate: sshsig.Certificate, trust: TrustRoots, now: datetime
) -> Credential:
    """Check a certificate against the trust roots at ``now`` (pure). Does not look at any
    signature made with the certified key; :func:`verify_signed` does both."""
    holder = _shown(certificate.key_id, 60)
    key_fp = certificate.key.fingerprint
    ca_fp = certificate.ca_key.fingerprint
    try:
        sshsig.verify_signature_blob(
            certificate.ca_key, certificate.signature, certificate.signed_part
        )
    except sshsig.SshsigError as exc:
        raise _bad(
            f"the credential of {holder} (key {key_fp}) does not carry a valid signature of "
            f"the CA it names ({ca_fp}): it was altered or forged ({exc.message})"
        ) from None
    for fp, what in ((key_fp, f"the key {key_fp} of {holder}"), (ca_fp, f"the CA key {ca_fp}")):
        revocation = trust.revocation(fp)
        # A revocation with a time applies from that time on: checked at the time an entry
        # was signed (an audit), a signature made before the revocation still holds.
        if revocation is not None and (
            revocation.revoked_at is None or now >= revocation.revoked_at
        ):
            when = f" on {format_time(revocation.revoked_at)}" if revocation.revoked_at else ""
            why = f" ({revocation.reason})" if revocation.reason else ""
            fix = (
                "the actor needs a new key and credential"
                if fp == key_fp
                else "its organization must issue new credentials from a new CA key"
            )
            raise IdentityError(
                "key_revoked", f"{what} was revoked{when}{why}; {fix} (docs/identity.md)"
            )
    org = trust.organization_for_ca(ca_fp)
    if org is None:
        raise IdentityError(
            "unknown_key",
            f"the credential of {holder} (key {key_fp}) is signed by CA key {ca_fp}, which is "
            f"not the CA key of any organization in the trust roots ({trust.digest[:19]}…); "
            "use a credential issued by a trusted organization, or the operator adds the CA "
            "key to its organization's ca_keys in the trust file",
        )
    if certificate.kind != sshsig.USER_CERT:
        raise _bad(f"the credential of {holder} is a host certificate; Docket needs a user one")
    if not ACTOR_ID_RE.match(certificate.key_id):
        raise _bad(
            f"the credential's key id {holder} is not an actor id "
            "(lowercase letters, digits and . _ : @ -, at most 128)"
        )
    if not org.may_certify(certificate.key_id):
        raise _bad(
            f"the credential of {holder} is signed by the CA of {org.id}, which may certify "
            f"only actors matching {', '.join(org.actors)} (its 'actors' in the trust file)"
        )
    if certificate.principals != (certificate.key_id,):
        shown = ", ".join(_shown(p, 40) for p in certificate.principals) or "none (any)"
        raise _bad(
            f"the credential of {holder} names principals {shown}; it must name exactly its "
            f"key id (ssh-keygen -s CA -I {certificate.key_id} -n {certificate.key_id} ...)"
        )
    unknown_options = [n for n, _ in certificate.critical_options if n != "verify-required"]
    if unknown_options:
        raise _bad(
            f"the credential of {holder} has critical option(s) "
            f"{', '.join(_shown(n, 40) for n in unknown_options)} that Docket does not know, "
            "so it must refuse it"
        )
    try:
        roles = parse_roles(certificate.extension(ROLES_EXTENSION))
    except ValueError as exc:
        raise _bad(f"the credential of {holder}: {exc}") from None
    if certificate.serial > MAX_SAFE_INT:
        raise _bad(f"the credential of {holder} has serial {certificate.serial}, above 2**53")
    not_granted = [r.value for r in roles if r not in org.may_grant]
    if not_granted:
        raise IdentityError(
            "role_not_granted",
            f"the credential of {holder} claims {', '.join(not_granted)}, which "
            f"{org.id} ({_shown(org.name, 60)}) may not grant (it may grant: "
            f"{', '.join(r.value for r in org.may_grant)}); its CA {ca_fp} must issue a new "
            "credential without it",
        )
    valid_after = _time(certificate.valid_after)
    valid_before = _time(certificate.valid_before)
    if valid_after is None or valid_before is None:
        raise _bad(
            f"the credential of {holder} never expires; Docket needs an end date "
            "(ssh-keygen -V +90d, or ./run keys issue --validity 90d)"
        )
    if now < valid_after:
        raise IdentityError(
            "credential_not_yet_valid",
            f"the credential of {holder} (key {key_fp}, serial {certificate.serial}) is valid "
            f"from {format_time(valid_after)}, not yet at {format_time(now)}",
        )
    if now >= valid_before:
        raise IdentityError(
            "credential_expired",
            f"the credential of {holder} (key {key_fp}, serial {certificate.serial}) expired at "
            f"{format_time(valid_before)} (it is {format_time(now)}); {org.id} must issue a "
            "new one (./run keys issue)",
        )
    return Credential(
        actor_id=certificate.key_id,
        roles=roles,
        organization_id=org.id,
        organization_name=org.name,
        acts_for=org.acts_for,
        key_fingerprint=key_fp,
        ca_fingerprint=ca_fp,
        serial=certificate.serial,
        valid_after=valid_after,
        valid_before=valid_before,
        certificate=certificate.line,
    )


def verify_signed(
    message: bytes,
    armored_signature: str,
    trust: TrustRoots,
    now: datetime,
    namespace: str = NAMESPACE,
    *,
    parse_certificate: Callable[[bytes, str], sshsig.Certificate] = sshsig.parse_certificate,
    check: Callable[[sshsig.Certificate, TrustRoots, datetime], Credential] = check_certificate,
) -> Credential:
    """Check an armored SSH signature over ``message`` and the credential it carries.

    Pure and deterministic (``now`` is given): safe in the workflow sandbox. Returns the
    proven :class:`Credential`; raises :class:`IdentityError` otherwise. ``parse_certificate``
    and ``check`` may be memoized versions of the defaults (an audit of a large log checks the
    same few certificates again and again); they must give the same results."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not armored_signature or not armored_signature.strip():
        raise IdentityError(
            "unsigned",
            "the command carries no signature; sign it with your key and credential "
            "(--as ID with --key FILE, DOCKET_KEY or the SSH agent; see docs/identity.md)",
        )
    try:
        sig = sshsig.parse_sshsig(sshsig.dearmor(armored_signature))
    except sshsig.SshsigError as exc:
        raise IdentityError("malformed_signature", exc.message) from None
    if sig.namespace != namespace:
        raise IdentityError(
            "wrong_namespace",
            f"the signature is for namespace {_shown(sig.namespace, 60)}, not {namespace!r}: "
            f"it was made for another purpose (sign with -n {namespace})",
        )
    try:
        certificate = parse_certificate(sig.public_key, "the signature's certificate")
    except sshsig.SshsigError as exc:
        if exc.code == "not_a_certificate":
            try:
                plain = sshsig.parse_public_key(sig.public_key).fingerprint
            except sshsig.SshsigError:
                plain = "(unreadable)"
            raise IdentityError(
                "not_a_certificate",
                f"the signature was made with a bare key ({plain}) and carries no credential; "
                "sign with the key's certificate (ssh-keygen -Y sign -f KEY-cert.pub, or put "
                "KEY-cert.pub beside the key)",
            ) from None
        code = "bad_credential" if exc.code == "unsupported_key" else "malformed_signature"
        raise IdentityError(code, exc.message) from None
    data = sshsig.signed_data(sig.namespace, sig.hash_algorithm, message)
    try:
        details = sshsig.verify_signature_blob(certificate.key, sig.signature, data)
    except sshsig.SshsigError as exc:
        raise IdentityError(
            "bad_signature",
            f"the signature of {_shown(certificate.key_id, 60)} does not match this command: "
            f"{exc.message}. The command was altered after signing, or signed with another key",
        ) from None
    credential = check(certificate, trust, now)
    if (
        details.sk_flags is not None
        and any(name == "verify-required" for name, _ in certificate.critical_options)
        and not details.sk_flags & sshsig.USER_VERIFIED
    ):
        raise IdentityError(
            "bad_signature",
            f"the credential of {credential.actor_id} requires user verification (PIN) on its "
            "FIDO key, and this signature was made without it",
        )
    return credential
