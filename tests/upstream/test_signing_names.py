"""`signing.authorization` works out what the names alone decide once per set of names
(`signing._Names`: order, spelling, the lists) and formats only the values per request. These
tests hold it to the form it replaced, kept here as `reference_authorization`: every pair
encoded and sorted per request (`canonical_pairs`), the headers picked by
`select_signed_headers` where `only_signable` asks for the SDK's choice.

Drawn to reach every branch: names differing only in case (no `_Names`: the per-request
form), base64 and bare values (one escape over the whole text) and every other character
(each value encoded), value-less params, names that percent-encode, one and no names, the
remembered sets and a full cache.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.upstream import signing
from tests.upstream.test_signing import (
    CJK,
    SIGNABLE_NAMES,
    SPECIALS,
    UNSIGNABLE_NAMES,
    SignedRequest,
    any_case,
    sdk_authorization,
)

PROPERTY = settings(max_examples=400, deadline=None)


def reference_authorization(
    *,
    secret_id: str,
    secret_key: str,
    method: str,
    host: str | None,
    path: str,
    params: signing.Params,
    headers: Mapping[str, str],
    start: int,
    end: int,
    only_signable: bool = False,
) -> str:
    """`signing.authorization` before names were remembered (2e96bd6), with the caller's
    `select_signed_headers` for `only_signable`."""
    if only_signable:
        headers = signing.select_signed_headers(headers)
    header_items: Mapping[str, str] = headers
    if host is not None and not any(name.lower() == "host" for name in headers):
        header_items = {**headers, "host": host}
    header_pairs = signing.canonical_pairs(header_items.items())
    param_pairs = signing.canonical_pairs(params.items()) if params else []
    window = signing.key_time(start, end)
    to_sign = signing.string_to_sign(
        window, signing.http_string(method, path, param_pairs, header_pairs)
    )
    sign_key = signing.sign_key(secret_key, window)
    return (
        f"q-sign-algorithm=sha1&q-ak={secret_id}&q-sign-time={window}&q-key-time={window}"
        f"&q-header-list={';'.join(name for name, _ in header_pairs)}"
        f"&q-url-param-list={';'.join(name for name, _ in param_pairs)}"
        f"&q-signature={signing.signature(sign_key, to_sign)}"
    )


BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
values = st.one_of(
    st.text(BASE64, max_size=30),  # a Content-MD5, a token
    st.text(BASE64 + "-_.~", max_size=12),
    st.text(st.sampled_from(BASE64 + SPECIALS + CJK + ": &%\n"), max_size=12),
    st.text(max_size=8),  # lone surrogates too: both forms must refuse them alike
    st.sampled_from(["application/xml", "312", "b-1250000000.ci.ap-guangzhou.myqcloud.com"]),
)
names = st.one_of(
    st.sampled_from(SIGNABLE_NAMES + UNSIGNABLE_NAMES).flatmap(any_case),
    st.text(st.sampled_from("abcXYZ-_.~%:+/=&;视"), min_size=1, max_size=6),
)
# Names unique as given (a dict), not once lower-cased: "Host" beside "host" is drawn on purpose.
headers_strategy = st.dictionaries(names, values, max_size=6)
params_strategy = st.dictionaries(
    st.one_of(names, st.sampled_from(["tag", "size", "queueId", "Tag"])),
    st.one_of(st.none(), values),
    max_size=4,
)


@st.composite
def calls(draw: st.DrawFn) -> dict[str, object]:
    start = draw(st.integers(min_value=0, max_value=2**32))
    return {
        "secret_id": draw(st.sampled_from(["AKIDa", "AKIDb"])),
        "secret_key": draw(st.sampled_from(["k1", "k2"])),
        "method": draw(st.sampled_from(["GET", "post", "PUT"])),
        "host": draw(st.sampled_from([None, "b-1.ci.ap-guangzhou.myqcloud.com"])),
        "path": draw(st.sampled_from(["/jobs", "jobs", "/视频/a+b.mp4"])),
        "params": draw(params_strategy),
        "headers": draw(headers_strategy),
        "start": start,
        "end": start + draw(st.integers(min_value=1, max_value=10**6)),
        "only_signable": draw(st.booleans()),
    }


def outcome(sign: object, call: dict[str, object]) -> str:
    """The Authorization, or the exception's type when signing refuses (a lone surrogate)."""
    try:
        return sign(**call)  # type: ignore[operator, no-any-return]
    except (UnicodeEncodeError, TypeError, AttributeError) as error:
        return type(error).__name__


@pytest.fixture(autouse=True)
def forget_names() -> Iterator[None]:
    signing._NAMES.clear()
    yield
    signing._NAMES.clear()


@PROPERTY
@given(call=calls())
def test_same_authorization_as_the_per_request_form(call: dict[str, object]) -> None:
    expected = outcome(reference_authorization, call)
    assert outcome(signing.authorization, call) == expected  # names worked out
    assert outcome(signing.authorization, call) == expected  # names remembered


@PROPERTY
@given(call=calls())
def test_same_authorization_with_the_cache_full(call: dict[str, object]) -> None:
    signing._NAMES.clear()
    for number in range(signing._NAMES_CACHE_SIZE):
        signing._names((f"x-cos-filler-{number}",), False)
    assert len(signing._NAMES) == signing._NAMES_CACHE_SIZE
    assert outcome(signing.authorization, call) == outcome(reference_authorization, call)
    assert len(signing._NAMES) == signing._NAMES_CACHE_SIZE


@PROPERTY
@given(
    value=st.text(BASE64, max_size=30),
    others=st.dictionaries(st.sampled_from(SIGNABLE_NAMES), st.text(BASE64), max_size=3),
)
def test_a_submits_headers_sign_as_before(value: str, others: dict[str, str]) -> None:
    """The CI client's own shape (`CiClient._send`): Host, a body's type, length and MD5, a
    token, unsigned headers beside them; base64 values, so the escape over the whole text."""
    headers = {
        "Host": "b-1250000000.ci.ap-guangzhou.myqcloud.com",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "Content-Type": "application/xml",
        "Content-Length": "312",
        "Content-MD5": value,
        **others,
        "User-Agent": "ci-gateway",
    }
    call: dict[str, object] = {
        "secret_id": "AKIDa",
        "secret_key": "k",
        "method": "POST",
        "host": None,
        "path": "/jobs",
        "params": {},
        "headers": headers,
        "start": 1700000000,
        "end": 1700003600,
        "only_signable": True,
    }
    assert signing.authorization(**call) == reference_authorization(**call)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(call=calls())
def test_only_signable_matches_the_official_sdk(call: dict[str, object]) -> None:
    """With `only_signable`, what the SDK puts in Authorization for the same request, as
    `test_matches_official_sdk` holds the caller's `select_signed_headers` to it."""
    headers = call["headers"]
    assert isinstance(headers, dict)
    params = call["params"]
    assert isinstance(params, dict)
    lowered = [signing.encode(name).lower() for name in {**headers, **params}]
    if len(set(lowered)) < len(lowered) or call["host"] is None:
        return  # the SDK keeps one of two such names; it signs the URL's host
    try:
        "".join(str(value) for value in {**headers, **params}.values()).encode()
    except UnicodeEncodeError:
        return
    request = SignedRequest(
        secret_id=str(call["secret_id"]),
        secret_key=str(call["secret_key"]),
        method=str(call["method"]),
        host=str(call["host"]),
        path="/jobs",
        params=params,
        headers={name: value for name, value in headers.items() if name.lower() != "host"},
        start=int(str(call["start"])),
        end=int(str(call["end"])),
    )
    assert request.sign(only_signable=True) == sdk_authorization(request)


def test_names_differing_in_case_are_not_remembered_as_a_set() -> None:
    assert signing._names(("Host", "host"), False) is None
    assert signing._names(("Host", "host"), True) is None
    assert signing._names(("Host", "User-Agent", "user-agent"), True) is not None


def test_long_names_are_not_remembered() -> None:
    name = "x-cos-meta-" + "a" * signing._NAMES_MAX_CHARS
    assert signing._names((name,), False) is not None
    assert signing._NAMES == {}
    assert signing._names(("x-cos-meta-a",), False) is not None
    assert list(signing._NAMES) == [(("x-cos-meta-a",), False)]


@PROPERTY
@given(call=calls(), values=st.lists(st.lists(values, min_size=6, max_size=6), max_size=4))
def test_the_last_values_remembered_are_those_of_the_same_names(
    call: dict[str, object], values: list[list[str]]
) -> None:
    """Each `_Names` keeps its last values' text: the same names with other values, the same
    values again, in any order, sign as the per-request form does."""
    headers = call["headers"]
    assert isinstance(headers, dict)
    calls_ = [call] + [{**call, "headers": dict(zip(headers, row, strict=False))} for row in values]
    for each in calls_ + calls_[::-1]:
        assert outcome(signing.authorization, each) == outcome(reference_authorization, each)
