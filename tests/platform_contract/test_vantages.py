"""Real vantage points: configuration, probes through real HTTP and SOCKS5 proxies on loopback
(one port per country; the simulator geolocates by the connection's source address), what the
evidence records, and a country without a vantage is never "removed"."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.platform import PlatformActivities, PlatformEndpoint
from activities.vantages import Vantage, VantageConfigError, VantageDirectory, redact
from docket.verification import Evidence, Observation
from platform_sim.scenarios import markers_for
from platform_sim.server import PlatformSimulator
from platform_sim.testing import SignedClient, sample_order

SECRET = b"vantage-secret"
EXITS = {"VN": "127.0.0.2", "DE": "127.0.0.3"}
env = ActivityEnvironment()


@pytest.fixture
def sim() -> Iterator[PlatformSimulator]:
    with PlatformSimulator(
        secrets={"facebook": SECRET}, vantage_proxies=EXITS, vantage_header=False
    ) as s:
        yield s


def restrict(sim: PlatformSimulator, slug: str) -> str:
    """An item the platform restricts in VN (geo-blocked there, available elsewhere)."""
    url = sim.content_url("facebook", slug)
    client = SignedClient(sim.base_url("facebook"), SECRET)
    try:
        response = client.submit(sample_order(f"req-{slug.replace('--', '-')}", [url]))
        assert response.status_code == 201, response.text
    finally:
        client.close()
    sim.advance(5)
    return url


def directory(sim: PlatformSimulator, scheme: str = "http") -> VantageDirectory:
    return VantageDirectory(
        {
            "control": Vantage("control", "direct"),
            "VN": Vantage("VN", "proxy", proxy=sim.proxy_url("VN", scheme), label="vn-test-1"),
            "DE": Vantage("DE", "proxy", proxy=sim.proxy_url("DE", scheme)),
        }
    )


@pytest.fixture
async def acts(sim: PlatformSimulator) -> AsyncIterator[PlatformActivities]:
    endpoint = PlatformEndpoint(sim.base_url("facebook"), SECRET, markers_for("facebook"))
    a = PlatformActivities({"facebook": endpoint}, vantages=directory(sim))
    yield a
    await a.aclose()


async def probe(acts: PlatformActivities, url: str, vantage: str) -> Evidence:
    evidence: Evidence = await env.run(acts.probe_item, "facebook", "item-1", url, vantage)
    return evidence


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_each_country_sees_the_content_through_its_own_proxy(
    sim: PlatformSimulator, scheme: str
) -> None:
    url = restrict(sim, f"restrict--geo-{scheme}")
    endpoint = PlatformEndpoint(sim.base_url("facebook"), SECRET, markers_for("facebook"))
    acts = PlatformActivities({"facebook": endpoint}, vantages=directory(sim, scheme))
    try:
        inside = await probe(acts, url, "VN")
        outside = await probe(acts, url, "DE")
        control = await probe(acts, url, "control")
    finally:
        await acts.aclose()
    assert inside.observation is Observation.GEO_RESTRICTED
    assert outside.observation is Observation.AVAILABLE
    assert control.observation is Observation.AVAILABLE
    assert (inside.vantage_kind, inside.exit) == ("proxy", "vn-test-1")
    # no label: the proxy is named, without credentials
    assert outside.exit == redact(sim.proxy_url("DE", scheme))
    # the connection went to that country's proxy port, not to the platform directly
    assert inside.served_by == f"127.0.0.1:{sim.proxies['VN'].port}"
    assert control.vantage_kind == "direct"
    assert control.served_by == f"127.0.0.1:{sim.port}"
    assert sim.proxies["VN"].connections >= 1 and sim.proxies["DE"].connections >= 1


async def test_the_header_cannot_bypass_a_real_geo_block(sim: PlatformSimulator) -> None:
    """With real vantages the platform geolocates the connection; the stand-in header proves
    nothing: a direct request claiming VN is not in VN, a VN request claiming DE still is."""
    url = restrict(sim, "restrict--header")
    direct = httpx.get(url, headers={"X-Docket-Vantage": "VN"})
    assert "Original content" in direct.text  # claimed VN, but the connection is not in VN
    with httpx.Client(proxy=sim.proxy_url("VN")) as via_vn:
        claimed = via_vn.get(url, headers={"X-Docket-Vantage": "DE"})
    assert "isn't available in your country" in claimed.text


async def test_a_country_without_a_vantage_is_unverified_never_removed(
    sim: PlatformSimulator,
) -> None:
    url = sim.content_url("facebook", "410--gone")
    endpoint = PlatformEndpoint(sim.base_url("facebook"), SECRET, markers_for("facebook"))
    acts = PlatformActivities(
        {"facebook": endpoint}, vantages=VantageDirectory.direct_control_only()
    )
    before = sim.stats()["platforms"].get("facebook", {}).get("probes", {})
    try:
        evidence = await probe(acts, url, "VN")
    finally:
        await acts.aclose()
    assert evidence.observation is Observation.NO_VANTAGE
    assert evidence.inconclusive
    assert evidence.status_code is None and evidence.body_sha256 is None
    assert evidence.vantage_kind == "none"
    assert "no vantage point is configured for 'VN'" in (evidence.error or "")
    after = sim.stats()["platforms"].get("facebook", {}).get("probes", {})
    assert after == before  # nothing was fetched


async def test_the_simulated_stand_in_is_labelled_as_such() -> None:
    with PlatformSimulator(secrets={"facebook": SECRET}) as sim:  # honours the header
        url = restrict(sim, "restrict--standin")
        endpoint = PlatformEndpoint(sim.base_url("facebook"), SECRET, markers_for("facebook"))
        acts = PlatformActivities({"facebook": endpoint})  # default: the stand-in
        try:
            evidence = await probe(acts, url, "VN")
        finally:
            await acts.aclose()
    assert evidence.observation is Observation.GEO_RESTRICTED
    assert (evidence.vantage_kind, evidence.exit) == ("simulated", "simulated")


async def test_proxy_credentials_work_and_are_never_recorded() -> None:
    with PlatformSimulator(
        secrets={"facebook": SECRET},
        vantage_proxies={"VN": "127.0.0.2"},
        vantage_header=False,
        proxy_credentials=("docket", "s3cret-pass"),
    ) as sim:
        url = restrict(sim, "restrict--creds")
        port = sim.proxies["VN"].port
        endpoint = PlatformEndpoint(sim.base_url("facebook"), SECRET, markers_for("facebook"))
        results: dict[str, Evidence] = {}
        for name, proxy in (
            ("good-socks", f"socks5://docket:s3cret-pass@127.0.0.1:{port}"),
            ("good-http", f"http://docket:s3cret-pass@127.0.0.1:{port}"),
            ("bad", f"socks5://docket:wrong@127.0.0.1:{port}"),
        ):
            acts = PlatformActivities(
                {"facebook": endpoint},
                vantages=VantageDirectory({"VN": Vantage("VN", "proxy", proxy=proxy)}),
            )
            try:
                results[name] = await probe(acts, url, "VN")
            finally:
                await acts.aclose()
    assert results["good-socks"].observation is Observation.GEO_RESTRICTED
    assert results["good-http"].observation is Observation.GEO_RESTRICTED
    assert results["bad"].observation is Observation.PROBE_ERROR
    for evidence in results.values():
        recorded = evidence.model_dump_json()
        assert "s3cret-pass" not in recorded and "wrong" not in recorded
        assert (
            evidence.exit == f"{'http' if evidence is results['good-http'] else 'socks5'}"
            f"://127.0.0.1:{port}"
        )


def test_evidence_from_before_vantages_serializes_as_it_did() -> None:
    """Evidence without the new fields has the exact JSON form it had (audit hashes)."""
    old: dict[str, Any] = {
        "item_id": "i1",
        "vantage": "VN",
        "url": "https://x/p",
        "observation": "removed",
        "inconclusive": False,
        "status_code": 410,
        "final_url": "https://x/p",
        "body_sha256": None,
        "body_bytes": 0,
        "truncated": False,
        "marker": "status:410",
        "blocked_by": None,
        "error": None,
        "probed_at": "2026-11-29T08:00:00Z",
        "markers_version": "v1",
    }
    assert Evidence.model_validate(old).model_dump(mode="json") == old


# -- configuration -------------------------------------------------------------------------


def test_configuration_from_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "vantages.toml"
    path.write_text(
        """
[vantage.control]
kind = "direct"

[vantage.VN]
proxy = "socks5h://vn-exit.example.net:1080"
label = "vn-hanoi-1"

[vantage.DE]
proxy = "http://de-proxy.example.net:3128"
credentials_env = "DE_PROXY_AUTH"

[vantage.FR]
proxy = "http://fr-proxy.example.net:3128"
""",
        encoding="utf-8",
    )
    environ = {
        "DOCKET_VANTAGES_FILE": str(path),
        "DE_PROXY_AUTH": "user:p@ss word",
        "DOCKET_VANTAGE_FR": "off",
        "DOCKET_VANTAGE_TH": "socks5://th-exit.example.net:1080",
        "DOCKET_VANTAGE_TH_LABEL": "th-bkk-1",
    }
    vantages = VantageDirectory.load(environ=environ)
    vn = vantages.get("VN")
    assert vn is not None and (vn.kind, vn.exit) == ("proxy", "vn-hanoi-1")
    de = vantages.get("DE")
    assert de is not None and de.proxy == "http://user:p%40ss%20word@de-proxy.example.net:3128"
    assert de.exit == "http://de-proxy.example.net:3128"
    assert vantages.get("FR") is None  # turned off by the environment
    th = vantages.get("TH")
    assert th is not None and th.exit == "th-bkk-1"
    assert vantages.get("US") is None  # not configured: no vantage
    control = vantages.get("control")
    assert control is not None and control.kind == "direct"
    described = "\n".join(vantages.describe())
    assert "p@ss" not in described and "p%40ss" not in described
    assert "p%40ss" not in repr(de)


def test_without_configuration_only_control_is_probed() -> None:
    vantages = VantageDirectory.load(environ={})
    assert vantages.get("control") is not None
    assert vantages.get("VN") is None


def test_configuration_errors_are_all_named(tmp_path: Path) -> None:
    path = tmp_path / "vantages.toml"
    path.write_text(
        """
[vantage.VN]
proxy = "ftp://vn.example.net:21"

[vantage.DE]
proxy = "http://de.example.net"

[vantage.vietnam]
kind = "direct"

[vantage.FR]
proxy = "http://fr.example.net:3128"
credentials_env = "FR_AUTH"

[vantage.TH]
kind = "proxy"
speed = "fast"
""",
        encoding="utf-8",
    )
    with pytest.raises(VantageConfigError) as info:
        VantageDirectory.load(path, environ={"DOCKET_VANTAGE_US": "gopher://x:1"})
    problems = "\n".join(info.value.problems)
    assert "vantage.VN.proxy" in problems and "scheme 'ftp'" in problems
    assert "vantage.DE.proxy" in problems and "explicit port" in problems
    assert "vantage.vietnam" in problems and "ISO country code" in problems
    assert "vantage.FR.credentials_env" in problems and "FR_AUTH" in problems
    assert "vantage.TH" in problems and "speed" in problems
    assert "DOCKET_VANTAGE_US" in problems
    assert len(info.value.problems) == 6
    with pytest.raises(VantageConfigError, match="file is missing"):
        VantageDirectory.load(tmp_path / "nope.toml", environ={})
