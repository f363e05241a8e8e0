"""Content URLs of the simulator: every removal style, vantage, resurfacing, the liar."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from docket.platform_protocol import Notice, PlatformStatus
from docket.verification import MarkerSet, Observation, classify
from platform_sim.scenarios import ItemScenario, PlatformScenario, markers_for, pages_for
from platform_sim.server import PlatformSimulator
from platform_sim.testing import SignedClient, sample_order

SECRET = b"content-secret"
MARKERS = markers_for("facebook")


@pytest.fixture
def sim() -> Iterator[PlatformSimulator]:
    with PlatformSimulator(secrets={"facebook": SECRET}) as s:
        yield s


@pytest.fixture
def fb(sim: PlatformSimulator) -> Iterator[SignedClient]:
    client = SignedClient(sim.base_url("facebook"), SECRET)
    yield client
    client.close()


def probe(sim: PlatformSimulator, slug: str, vantage: str | None = None) -> httpx.Response:
    headers = {"X-Docket-Vantage": vantage} if vantage else {}
    return httpx.get(sim.content_url("facebook", slug), headers=headers, follow_redirects=True)


def observe(sim: PlatformSimulator, slug: str, vantage: str | None = None) -> Observation:
    r = probe(sim, slug, vantage)
    return classify(r.status_code, str(r.url), r.content, r.headers, MARKERS).observation


def decide(sim: PlatformSimulator, fb: SignedClient, rid: str, *slugs: str) -> PlatformStatus:
    urls = [sim.content_url("facebook", s) for s in slugs]
    r = fb.submit(sample_order(rid, urls))
    assert r.status_code == 201, r.text
    sim.advance(5)
    st = fb.status(r.json()["ticket"])
    return PlatformStatus.model_validate_json(st.content)


@pytest.mark.parametrize(
    ("slug", "status", "observation"),
    [
        ("marker--a", 200, Observation.REMOVED),  # the status code lies
        ("404--a", 404, Observation.NOT_FOUND),
        ("410--a", 410, Observation.REMOVED),
        ("451--a", 451, Observation.LEGALLY_BLOCKED),
        ("login--a", 200, Observation.LOGIN_WALL),
    ],
)
def test_removal_views(
    sim: PlatformSimulator, fb: SignedClient, slug: str, status: int, observation: Observation
) -> None:
    assert observe(sim, slug) is Observation.AVAILABLE  # baseline
    st = decide(sim, fb, "req-view-" + slug.split("--")[0], slug)
    assert st.items[0].effect == "removed_globally"
    r = probe(sim, slug)
    assert r.status_code == status
    assert observe(sim, slug) is observation


def test_451_names_who_blocks(sim: PlatformSimulator, fb: SignedClient) -> None:
    st = decide(sim, fb, "req-451", "451--b")
    r = probe(sim, "451--b")
    c = classify(r.status_code, str(r.url), r.content, r.headers, MARKERS)
    assert c.blocked_by == f"{sim.url}/facebook/legal/{st.ticket}"


def test_login_wall_redirects_to_login_page(sim: PlatformSimulator, fb: SignedClient) -> None:
    decide(sim, fb, "req-login", "login--c")
    raw = httpx.get(sim.content_url("facebook", "login--c"))
    assert raw.status_code == 302
    assert raw.headers["Location"].startswith("/facebook/login")
    r = probe(sim, "login--c")
    assert "/facebook/login" in str(r.url)


def test_default_view_is_the_200_marker_page(sim: PlatformSimulator, fb: SignedClient) -> None:
    decide(sim, fb, "req-default", "plain-post")
    r = probe(sim, "plain-post")
    assert r.status_code == 200
    assert markers_for("facebook").removed[0] in r.text


def test_restriction_depends_on_vantage(sim: PlatformSimulator, fb: SignedClient) -> None:
    st = decide(sim, fb, "req-geo", "restrict--d")
    assert st.items[0].effect == "restricted"
    assert st.items[0].restricted_in == ["VN"]
    assert observe(sim, "restrict--d", "VN") is Observation.GEO_RESTRICTED
    assert observe(sim, "restrict--d", "control") is Observation.AVAILABLE
    assert observe(sim, "restrict--d") is Observation.AVAILABLE
    r = httpx.get(sim.content_url("facebook", "restrict--d") + "?vantage=vn")
    assert classify(200, str(r.url), r.content, {}, MARKERS).observation is (
        Observation.GEO_RESTRICTED
    )


def test_liar_claims_removal_until_renotified(sim: PlatformSimulator, fb: SignedClient) -> None:
    st = decide(sim, fb, "req-liar", "liar--e")
    assert st.items[0].effect == "removed_globally"
    assert observe(sim, "liar--e") is Observation.AVAILABLE  # the discrepancy
    r = fb.notice(st.ticket, Notice(kind="renotify", request_id="req-liar"), key="rn")
    assert r.status_code == 202
    assert observe(sim, "liar--e") is Observation.REMOVED


def test_resurfaces_after_n_probes(sim: PlatformSimulator, fb: SignedClient) -> None:
    decide(sim, fb, "req-resurface", "resurface2--f")
    seen = [observe(sim, "resurface2--f") for _ in range(4)]
    assert seen == [
        Observation.REMOVED,
        Observation.REMOVED,
        Observation.AVAILABLE,
        Observation.AVAILABLE,
    ]


def test_resurfaces_after_delay(sim: PlatformSimulator, fb: SignedClient) -> None:
    sim.configure(
        "facebook",
        PlatformScenario(items={"back-later": ItemScenario(resurface_after_seconds=3600)}),
    )
    decide(sim, fb, "req-back", "back-later")
    assert observe(sim, "back-later") is Observation.REMOVED
    sim.advance(3600)
    assert observe(sim, "back-later") is Observation.AVAILABLE


def test_reinstatement_brings_content_back(sim: PlatformSimulator, fb: SignedClient) -> None:
    st = decide(sim, fb, "req-reinstate", "410--g", "410--h")
    notice = Notice(kind="reinstatement", request_id="req-reinstate", items=["item-1"])
    assert fb.notice(st.ticket, notice, key="ri").status_code == 202
    assert observe(sim, "410--g") is Observation.AVAILABLE
    assert observe(sim, "410--h") is Observation.REMOVED
    after = PlatformStatus.model_validate_json(fb.status(st.ticket).content)
    assert after.items[0].reinstated_at is not None
    assert after.items[1].reinstated_at is None


def test_not_found_and_already_removed(sim: PlatformSimulator, fb: SignedClient) -> None:
    assert observe(sim, "notfound--i") is Observation.NOT_FOUND
    assert observe(sim, "already.410--j") is Observation.REMOVED
    st = decide(sim, fb, "req-nf", "notfound--i", "already.410--j", "moreinfo--k")
    assert [i.effect for i in st.items] == ["not_found", "already_removed", "needs_more_info"]
    assert st.items[2].question and st.items[2].reason is None  # the question, not a reason


def test_declined_content_stays_up(sim: PlatformSimulator, fb: SignedClient) -> None:
    st = decide(sim, fb, "req-dec", "decline--l")
    assert st.items[0].effect == "declined"
    assert st.items[0].reason
    assert observe(sim, "decline--l") is Observation.AVAILABLE


def test_failing_probes(sim: PlatformSimulator) -> None:
    codes = [probe(sim, "err2--m").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert observe(sim, "err1--n") is Observation.PROBE_ERROR


def test_explicit_item_config_beats_slug_tokens(sim: PlatformSimulator, fb: SignedClient) -> None:
    sim.configure("facebook", PlatformScenario(items={"410--o": ItemScenario(decision="decline")}))
    st = decide(sim, fb, "req-explicit", "410--o")
    assert st.items[0].effect == "declined"


def test_pages_match_the_shipped_platform_markers() -> None:
    """The simulator's pages are recognised by the markers in docket/data/platforms.toml."""
    toml_path = Path(__file__).resolve().parents[2] / "docket" / "data" / "platforms.toml"
    if not toml_path.exists():
        pytest.skip("no shipped platforms.toml")
    platforms = tomllib.loads(toml_path.read_text(encoding="utf-8"))["platform"]
    for entry in platforms:
        markers = MarkerSet.model_validate(entry["markers"])
        pages = pages_for(entry["id"])
        for text, expected in (
            (pages.removed, Observation.REMOVED),
            (pages.geo_restricted, Observation.GEO_RESTRICTED),
            (pages.login_wall, Observation.LOGIN_WALL),
        ):
            c = classify(200, "https://x/p", text.encode(), {}, markers)
            assert c.observation is expected, (entry["id"], text)
