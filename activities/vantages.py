"""Vantage points: where Docket looks at content from. Worker configuration, never history.

Docket checks a platform's claim by fetching the content URL as an anonymous visitor from
every country in the order's scope, plus ``control`` (anywhere). A vantage is:

* ``proxy``: an HTTP(S) or SOCKS5 proxy whose exit is in that country (``http://``,
  ``https://``, ``socks5://``, ``socks5h://``: the last resolves names at the exit, as a visitor
  there would). The probe goes through it; nothing tells the platform it is Docket.
* ``direct``: this worker's own connection (``control`` by default; a country only if the
  worker itself is there).
* ``simulated``: the platform simulator's stand-in: a direct request carrying
  ``X-Docket-Vantage: <name>``. Only the simulator honours it, and evidence says
  ``vantage_kind: simulated``; a real platform must never be trusted to honour a header.

A country without a vantage gets ``no_vantage`` evidence (inconclusive): never ``removed``.

Configuration (docs/platforms.md, "Vantage points"): a TOML file named by
``DOCKET_VANTAGES_FILE``::

    [vantage.control]
    kind = "direct"

    [vantage.VN]
    proxy = "socks5h://vn-exit.example.net:1080"
    label = "vn-hanoi-1"                      # recorded with every probe through it
    credentials_env = "DOCKET_VANTAGE_VN_AUTH"  # "user:password", kept out of the file

and environment overrides ``DOCKET_VANTAGE_<NAME>`` = a proxy URL, ``direct``, ``simulated`` or
``off``. Proxy URLs may carry credentials; they stay in worker memory and are never recorded
(evidence names the label, or the proxy without its credentials).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

VantageKind = Literal["direct", "proxy", "simulated"]
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
FILE_ENV = "DOCKET_VANTAGES_FILE"
ENV_PREFIX = "DOCKET_VANTAGE_"
CONTROL = "control"

_NAME_RE = re.compile(r"^(control|[A-Z]{2})$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_ENV_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


class VantageConfigError(Exception):
    """Vantage configuration that does not load; ``problems`` names each one and where."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid vantage configuration:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Vantage:
    """One vantage point. ``proxy`` may hold credentials: it is excluded from repr."""

    name: str
    kind: VantageKind
    proxy: str | None = field(default=None, repr=False)
    label: str | None = None

    @property
    def exit(self) -> str:
        """What evidence records as the exit: the label, else the proxy without credentials."""
        if self.label:
            return self.label
        if self.kind == "proxy" and self.proxy:
            return redact(self.proxy)
        return self.kind


def redact(url: str) -> str:
    """``socks5://user:pw@host:1080`` -> ``socks5://host:1080`` (never record credentials)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, "", "", ""))
    except ValueError:
        return "(unparseable proxy URL)"


def check_proxy(url: str) -> str | None:
    """None if ``url`` is a usable proxy URL, else what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme not in PROXY_SCHEMES:
        return f"scheme {parts.scheme or '(none)'!r} is not one of {', '.join(PROXY_SCHEMES)}"
    if not parts.hostname:
        return "has no host"
    if port is None:
        return "needs an explicit port, e.g. socks5h://vn-exit.example.net:1080"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "must be scheme://[user:password@]host:port with no path or query"
    return None


@dataclass(frozen=True)
class VantageDirectory:
    """The vantages a worker probes from. ``fallback`` serves names not configured."""

    vantages: Mapping[str, Vantage]
    fallback: VantageKind | None = None

    def get(self, name: str) -> Vantage | None:
        """The vantage for ``name`` (``control`` or a country code), or None: no vantage."""
        found = self.vantages.get(name)
        if found is not None:
            return found
        if self.fallback is not None and _NAME_RE.match(name):
            return Vantage(name=name, kind=self.fallback)
        return None

    @classmethod
    def simulated(cls) -> VantageDirectory:
        """Every vantage is the simulator's X-Docket-Vantage stand-in (tests, the demo)."""
        return cls({}, fallback="simulated")

    @classmethod
    def direct_control_only(cls) -> VantageDirectory:
        """``control`` from this worker; every country without a vantage (the safe default)."""
        return cls({CONTROL: Vantage(CONTROL, "direct")})

    @classmethod
    def load(
        cls, path: Path | str | None = None, environ: Mapping[str, str] | None = None
    ) -> VantageDirectory:
        """From the file (``path`` or ``$DOCKET_VANTAGES_FILE``) and the environment.

        Without either: ``control`` direct and no country vantage. Raises VantageConfigError
        naming every problem (file, key, what is allowed)."""
        env = os.environ if environ is None else environ
        problems: list[str] = []
        vantages: dict[str, Vantage] = {CONTROL: Vantage(CONTROL, "direct")}
        chosen = path if path is not None else env.get(FILE_ENV) or None
        if chosen is not None:
            vantages.update(_from_file(Path(chosen), env, problems))
        for key, value in sorted(env.items()):
            if not key.startswith(ENV_PREFIX) or key == FILE_ENV:
                continue
            name = key[len(ENV_PREFIX) :]
            if name.endswith("_AUTH") or name.endswith("_LABEL"):
                continue
            if name.lower() == CONTROL:
                name = CONTROL
            if not _NAME_RE.match(name):
                problems.append(
                    f"{key}: {name!r} is not a vantage name (control or an ISO country code)"
                )
                continue
            label = env.get(f"{key}_LABEL") or None
            entry = _entry(name, value.strip(), label, f"{key}", problems)
            if entry is None:
                vantages.pop(name, None)
            elif entry is not _INVALID:
                vantages[name] = entry
        if problems:
            raise VantageConfigError(problems)
        return cls(vantages)

    def describe(self) -> list[str]:
        """One line per vantage, safe to log (no credentials)."""
        lines = [f"{v.name}: {v.kind} via {v.exit}" for v in self.vantages.values()]
        if self.fallback:
            lines.append(f"(any other): {self.fallback}")
        return lines


_INVALID = Vantage("invalid", "direct")


def _entry(
    name: str, value: str, label: str | None, where: str, problems: list[str]
) -> Vantage | None:
    """A vantage from an override value; None means ``off``; _INVALID after a problem."""
    if value == "off":
        return None
    if value in ("direct", "simulated"):
        return Vantage(name, "direct" if value == "direct" else "simulated", label=label)
    problem = check_proxy(value)
    if problem is not None:
        problems.append(
            f"{where}: proxy {redact(value)!r} {problem} (or use direct, simulated, off)"
        )
        return _INVALID
    return Vantage(name, "proxy", proxy=value, label=label)


def _from_file(path: Path, env: Mapping[str, str], problems: list[str]) -> dict[str, Vantage]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path}: file is missing (named by {FILE_ENV} or --vantages)")
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: not valid TOML: {exc}")
        return {}
    unknown = sorted(set(raw) - {"vantage"})
    if unknown:
        problems.append(f"{path}: unknown tables {unknown}; expected [vantage.<NAME>] tables")
    table = raw.get("vantage", {})
    if not isinstance(table, dict):
        problems.append(f"{path}: 'vantage' must be a table of [vantage.<NAME>] tables")
        return {}
    out: dict[str, Vantage] = {}
    for name, spec in table.items():
        where = f"{path.name}: vantage.{name}"
        if not _NAME_RE.match(name):
            problems.append(f"{where}: the name must be control or an ISO country code (VN)")
            continue
        if not isinstance(spec, dict):
            problems.append(f"{where}: must be a table")
            continue
        vantage = _from_table(name, spec, env, where, problems)
        if vantage is not None:
            out[name] = vantage
    return out


def _from_table(
    name: str, spec: dict[str, Any], env: Mapping[str, str], where: str, problems: list[str]
) -> Vantage | None:
    allowed = {"kind", "proxy", "label", "credentials_env"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        problems.append(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")
        return None
    label = spec.get("label")
    if label is not None and (not isinstance(label, str) or not _LABEL_RE.match(label)):
        problems.append(f"{where}.label: 1-64 characters of [A-Za-z0-9._:-]")
        return None
    proxy = spec.get("proxy")
    kind = spec.get("kind", "proxy" if proxy is not None else None)
    if kind not in ("direct", "proxy", "simulated"):
        problems.append(f"{where}.kind: one of direct, proxy, simulated (or give a proxy)")
        return None
    if kind != "proxy":
        if proxy is not None:
            problems.append(f"{where}.proxy: only for kind = 'proxy'")
            return None
        return Vantage(name, kind, label=label)
    if not isinstance(proxy, str):
        problems.append(f"{where}.proxy: required for kind = 'proxy' (a URL string)")
        return None
    problem = check_proxy(proxy)
    if problem is not None:
        problems.append(f"{where}.proxy: {redact(proxy)!r} {problem}")
        return None
    creds_env = spec.get("credentials_env")
    if creds_env is not None:
        if not isinstance(creds_env, str) or not _ENV_NAME_RE.match(creds_env):
            problems.append(f"{where}.credentials_env: an environment variable name")
            return None
        creds = env.get(creds_env, "")
        if ":" not in creds:
            problems.append(f"{where}.credentials_env: {creds_env} must be set to 'user:password'")
            return None
        if urlsplit(proxy).username is not None:
            problems.append(f"{where}.proxy: credentials both in the URL and in {creds_env}")
            return None
        user, _, password = creds.partition(":")
        parts = urlsplit(proxy)
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc}"
        proxy = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return Vantage(name, "proxy", proxy=proxy, label=label)


__all__ = [
    "CONTROL",
    "Vantage",
    "VantageConfigError",
    "VantageDirectory",
    "VantageKind",
    "check_proxy",
    "redact",
]
