"""The classifier: markers first, status second; the status code lies."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from docket.verification import (
    INCONCLUSIVE,
    MarkerSet,
    Observation,
    blocked_by,
    classify,
    contradicts,
    is_login_url,
)

MARKERS = MarkerSet(
    version="v3",
    removed=["This content isn't available right now"],
    geo_restricted=["not available in your country due to a legal complaint"],
    login_wall=["Log in to continue"],
)
URL = "https://www.facebook.com/some.page/posts/1"


def test_200_without_markers_is_available() -> None:
    c = classify(200, URL, b"<h1>Post</h1>", {}, MARKERS)
    assert c.observation is Observation.AVAILABLE
    assert c.marker == "status:200"
    assert not c.inconclusive


def test_200_with_removed_marker_is_removed() -> None:
    # The status code lies: a removed post answered with 200.
    body = b"<p>This content isn&#039;t available right now</p>"
    c = classify(200, URL, body, {}, MARKERS)
    assert c.observation is Observation.REMOVED
    assert c.marker == "removed:This content isn't available right now@v3"


def test_marker_match_is_case_space_and_apostrophe_insensitive() -> None:
    body = "THIS   content isn\u2019t\navailable RIGHT now".encode()
    assert classify(200, URL, body, {}, MARKERS).observation is Observation.REMOVED


def test_geo_marker_is_geo_restricted() -> None:
    body = b"Video not available in your country due to a legal complaint from the government"
    c = classify(200, URL, body, {}, MARKERS)
    assert c.observation is Observation.GEO_RESTRICTED
    assert c.marker.startswith("geo_restricted:") and c.marker.endswith("@v3")


def test_login_marker_beats_removed_marker() -> None:
    body = b"Log in to continue. This content isn't available right now"
    c = classify(200, URL, body, {}, MARKERS)
    assert c.observation is Observation.LOGIN_WALL
    assert c.inconclusive


def test_404_is_not_found_not_removed() -> None:
    # A 404 may be a post that only needs a login: keep it distinct and inconclusive.
    c = classify(404, URL, b"Not Found", {}, MARKERS)
    assert c.observation is Observation.NOT_FOUND
    assert c.inconclusive


def test_410_is_removed() -> None:
    c = classify(410, URL, b"Gone", {}, MARKERS)
    assert c.observation is Observation.REMOVED
    assert c.marker == "status:410"


def test_451_is_legally_blocked_with_blocked_by() -> None:
    headers = {"Link": '<https://authority.example/>; rel="blocked-by"'}
    c = classify(451, URL, b"Unavailable For Legal Reasons", headers, MARKERS)
    assert c.observation is Observation.LEGALLY_BLOCKED
    assert c.blocked_by == "https://authority.example/"
    assert c.marker == "status:451"
    assert classify(451, URL, b"", {}, MARKERS).blocked_by is None


def test_blocked_by_parsing() -> None:
    assert blocked_by('<https://a/>; rel="next", <https://b/>; rel="blocked-by"') == "https://b/"
    assert blocked_by("<https://c/>; rel=blocked-by") == "https://c/"
    assert blocked_by('<https://d/>; rel="alternate blocked-by"') == "https://d/"
    assert blocked_by('<https://e/>; rel="next"') is None
    assert blocked_by(None) is None


def test_401_403_and_login_redirect_are_login_walls() -> None:
    for status in (401, 403):
        assert classify(status, URL, b"", {}, MARKERS).observation is Observation.LOGIN_WALL
    c = classify(200, "https://www.facebook.com/login/?next=x", b"<form>", {}, MARKERS)
    assert c.observation is Observation.LOGIN_WALL
    assert c.marker == "login_url"
    assert is_login_url("http://127.0.0.1:1/facebook/login?next=/x")
    assert not is_login_url("https://example.com/blog/loginless-life")


def test_server_errors_and_no_response_are_probe_errors() -> None:
    for status in (500, 502, 503, None):
        c = classify(status, URL, b"This content isn't available right now", {}, MARKERS)
        assert c.observation is Observation.PROBE_ERROR
        assert c.inconclusive
    assert classify(429, URL, b"", {}, MARKERS).observation is Observation.PROBE_ERROR
    assert classify(302, URL, b"", {}, MARKERS).observation is Observation.PROBE_ERROR


def test_header_lookup_is_case_insensitive() -> None:
    headers = {"LINK": '<https://x/>; rel="blocked-by"'}
    assert classify(451, URL, b"", headers, MARKERS).blocked_by == "https://x/"


def test_contradicts() -> None:
    assert contradicts("removed_globally", Observation.AVAILABLE)
    assert not contradicts("removed_globally", Observation.REMOVED)
    assert not contradicts("declined", Observation.AVAILABLE)
    assert not contradicts("removed_globally", Observation.LOGIN_WALL)


_login_texts = st.sampled_from(["Log in to continue", "LOG IN TO CONTINUE", "log in  to\ncontinue"])


@settings(max_examples=300)
@given(
    status=st.one_of(st.none(), st.integers(min_value=-10, max_value=1000)),
    prefix=st.binary(max_size=200),
    suffix=st.binary(max_size=200),
    login=_login_texts,
)
def test_login_walls_are_never_removed(
    status: int | None, prefix: bytes, suffix: bytes, login: str
) -> None:
    body = prefix + b" " + login.encode() + b" " + suffix
    c = classify(status, URL, body, {}, MARKERS)
    assert c.observation is not Observation.REMOVED
    if status is not None and not 500 <= status <= 599:
        assert c.observation is Observation.LOGIN_WALL


@settings(max_examples=300)
@given(
    status=st.one_of(st.none(), st.integers(min_value=-(2**31), max_value=2**31)),
    final_url=st.text(max_size=100),
    body=st.binary(max_size=2000),
    headers=st.dictionaries(st.text(max_size=20), st.text(max_size=100), max_size=5),
)
def test_classify_never_raises(
    status: int | None, final_url: str, body: bytes, headers: dict[str, str]
) -> None:
    c = classify(status, final_url, body, headers, MARKERS)
    assert isinstance(c.observation, Observation)
    assert c.inconclusive == (c.observation in INCONCLUSIVE)
