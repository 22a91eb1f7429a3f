"""Tests for `gateway.upstream.signing`, the COS `q-sign-algorithm=sha1` request signer.

Three independent oracles, because a signer that only agrees with itself proves nothing:

* published vectors (`vectors/signing/<case>/`, sources in the README there), checked one
  step at a time, each step fed the *expected* output of the step before it, so a failure names the
  one step that is wrong instead of every step after it;
* the official Python SDK's `CosS3Auth`, run on random requests with the clock pinned;
* the verifier half (`parse_authorization` + `expected_signature`), which must accept what the
  signer produced and reject any single change to what was signed.
"""

from __future__ import annotations

import contextlib
import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from unittest import mock
from urllib.parse import quote, unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qcloud_cos import CosConfig, cos_auth

from gateway.upstream import signing

VECTORS_DIR = Path(__file__).parent / "vectors" / "signing"
STEPS = ("sign_key", "http_string", "string_to_sign", "signature", "authorization")

# Bounded so the whole module stays well under 10 s; no deadline because the first examples pay
# for imports and the SDK's config object.
PROPERTY = settings(max_examples=200, deadline=None)


# --------------------------------------------------------------------------------------------
# The request under test


@dataclass(frozen=True)
class SignedRequest:
    """Everything `authorization` takes, so a test can sign, mutate and re-sign one request."""

    secret_id: str
    secret_key: str
    method: str
    host: str | None
    path: str
    params: dict[str, str | None]
    headers: dict[str, str]
    start: int
    end: int

    def sign(self, *, only_signable: bool = False) -> str:
        return signing.authorization(
            secret_id=self.secret_id,
            secret_key=self.secret_key,
            method=self.method,
            host=self.host,
            path=self.path,
            params=self.params,
            headers=self.headers,
            start=self.start,
            end=self.end,
            only_signable=only_signable,
        )

    def signed_header_items(self) -> dict[str, str]:
        """What `authorization` signs: every header given, plus `host` unless one is given."""
        items = dict(self.headers)
        if self.host is not None and not any(name.lower() == "host" for name in items):
            items["host"] = self.host
        return items

    def carried_params(self) -> dict[str, str]:
        """The query as a verifier sees it: keyed by encoded lower-case name, `?cancel` as ""."""
        return {signing.encode(name).lower(): value or "" for name, value in self.params.items()}

    def carried_headers(self) -> dict[str, str]:
        return {
            signing.encode(name).lower(): value
            for name, value in self.signed_header_items().items()
        }


def verify(request: SignedRequest, authorization: str) -> bool:
    """Run the emulator's check: recompute from what the request carries, compare."""
    parsed = signing.parse_authorization(authorization)
    expected = signing.expected_signature(
        parsed,
        secret_key=request.secret_key,
        method=request.method,
        path=request.path,
        params=request.carried_params(),
        headers=request.carried_headers(),
    )
    return expected == parsed.signature


# --------------------------------------------------------------------------------------------
# 1. Published vectors, step by step


@dataclass(frozen=True)
class Vector:
    name: str
    request: SignedRequest
    expected: dict[str, str]


def load_vector(folder: Path) -> Vector:
    raw = json.loads((folder / "request.json").read_text(encoding="utf-8"))
    request = SignedRequest(
        secret_id=raw["secret_id"],
        secret_key=raw["secret_key"],
        method=raw["method"],
        host=raw["host"],
        path=raw["path"],
        params=dict(raw["params"]),
        headers=dict(raw["headers"]),
        start=raw["start"],
        end=raw["end"],
    )
    # Exact bytes: HttpString and StringToSign end in a line feed that is part of the value.
    expected = {step: (folder / f"{step}.txt").read_bytes().decode("utf-8") for step in STEPS}
    return Vector(folder.name, request, expected)


VECTORS = [load_vector(folder) for folder in sorted(VECTORS_DIR.iterdir()) if folder.is_dir()]
VECTORS_BY_NAME = {vector.name: vector for vector in VECTORS}


def compute_step(step: str, vector: Vector) -> str:
    """Compute one step from the inputs and the vector's *expected* earlier steps."""
    request, expected = vector.request, vector.expected
    window = signing.key_time(request.start, request.end)
    if step == "sign_key":
        return signing.sign_key(request.secret_key, window)
    if step == "http_string":
        return signing.http_string(
            request.method,
            request.path,
            signing.canonical_pairs(request.params.items()),
            signing.canonical_pairs(request.signed_header_items().items()),
        )
    if step == "string_to_sign":
        return signing.string_to_sign(window, expected["http_string"])
    if step == "signature":
        return signing.signature(expected["sign_key"], expected["string_to_sign"])
    if step == "authorization":
        return request.sign()
    raise AssertionError(f"unknown step {step}")


def test_every_vector_folder_is_complete() -> None:
    """A folder missing a file would silently shrink the suite; the three named cases must exist."""
    assert {"ci-notes-post-jobs", "cos-doc-put-object", "cos-doc-get-object"} <= set(
        VECTORS_BY_NAME
    )
    for folder in VECTORS_DIR.iterdir():
        if folder.is_dir():
            missing = [s for s in STEPS if not (folder / f"{s}.txt").is_file()]
            assert not missing, f"{folder.name} lacks {missing}"


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("vector", VECTORS, ids=[vector.name for vector in VECTORS])
def test_vector_step(vector: Vector, step: str) -> None:
    """Each published intermediate separately, so the failing test id names case and step."""
    assert compute_step(step, vector) == vector.expected[step]


@pytest.mark.parametrize("vector", VECTORS, ids=[vector.name for vector in VECTORS])
def test_verifier_accepts_published_authorization(vector: Vector) -> None:
    """The emulator must accept Tencent's own examples, which sign `date` (the SDK never does)."""
    assert verify(vector.request, vector.expected["authorization"])


def test_sdk_reproduces_the_notes_vector() -> None:
    """The notes call their example SDK output: check the oracle agrees before trusting it."""
    request = VECTORS_BY_NAME["ci-notes-post-jobs"].request
    assert (
        sdk_authorization(request)
        == VECTORS_BY_NAME["ci-notes-post-jobs"].expected["authorization"]
    )


# --------------------------------------------------------------------------------------------
# Strategies

# Characters the encoding rules single out, plus CJK as used in real object keys.
SPECIALS = "+ ~/=-_.%&;?#:,'\"!*()"
CJK = "视频腾讯云测试"


def texts(*, min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    """Unicode text biased towards the characters where encoders disagree (no lone surrogates:
    they cannot be UTF-8 encoded, so no request can carry them)."""
    return st.text(
        alphabet=st.one_of(st.sampled_from(SPECIALS + CJK), st.characters(codec="utf-8")),
        min_size=min_size,
        max_size=max_size,
    )


def any_case(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda flips: "".join(
            char.upper() if flip else char.lower() for char, flip in zip(name, flips, strict=True)
        )
    )


SIGNABLE_NAMES = (
    "Content-Type",
    "Content-MD5",
    "Content-Length",
    "Cache-Control",
    "Range",
    "If-Match",
    "Pic-Operations",
    "Host",
    "x-cos-acl",
    "x-cos-meta-author",
    "x-cos-security-token",
    "x-ci-security-token",
    "x-ci-trace",
)
UNSIGNABLE_NAMES = ("Date", "User-Agent", "Accept", "Accept-Encoding", "Authorization", "Via")
HOSTS = (
    "examplebucket-1250000000.ci.ap-guangzhou.myqcloud.com",
    "examplebucket-1250000000.cos.ap-beijing.myqcloud.com",
    "a-1.ci.ap-shanghai.myqcloud.com",
)
METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")

header_values = texts(max_size=20)


def headers_from(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, str]]:
    # One value per case-insensitive name: HTTP header names are case-insensitive, and the SDK
    # keeps them in a dict, so "X-Cos-Acl" and "x-cos-acl" side by side would be a different test.
    return st.lists(
        st.tuples(st.sampled_from(names).flatmap(any_case), header_values),
        unique_by=lambda item: item[0].lower(),
        max_size=6,
    ).map(dict)


# Param names are non-empty (`?=x` is no CI request) and unique once encoded and lower-cased: the
# SDK keeps params in a dict keyed that way, so `A` and `a` together would collapse to one pair
# there but stay two here. Values include None and "" (a bare `?cancel`).
params_strategy = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(["cancel", "nextToken", "queueId", "ci-process"]), texts(min_size=1)
        ),
        st.one_of(st.none(), st.just(""), texts()),
    ),
    unique_by=lambda item: signing.encode(item[0]).lower(),
    max_size=5,
).map(dict)

# Paths as the caller passes them: raw (unencoded) and absolute. The SDK prepends "/" to a relative
# key, `signing.http_string` does not; callers always pass an absolute path.
paths = texts(max_size=30).map(lambda text: "/" + text)
secrets = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=40)


@st.composite
def windows(draw: st.DrawFn) -> tuple[int, int]:
    start = draw(st.integers(min_value=0, max_value=2**32))
    return start, start + draw(st.integers(min_value=1, max_value=10**6))


@st.composite
def requests(draw: st.DrawFn, header_names: tuple[str, ...] = SIGNABLE_NAMES) -> SignedRequest:
    start, end = draw(windows())
    return SignedRequest(
        secret_id=draw(secrets),
        secret_key=draw(secrets),
        method=draw(st.sampled_from(METHODS).flatmap(any_case)),
        host=draw(st.sampled_from(HOSTS)),
        path=draw(paths),
        params=draw(params_strategy),
        headers=draw(headers_from(header_names)),
        start=start,
        end=end,
    )


# --------------------------------------------------------------------------------------------
# 3 (i). The official SDK as an oracle


def sdk_authorization(request: SignedRequest) -> str:
    """What cos-python-sdk-v5's `CosS3Auth` puts in `Authorization` for the same request.

    The SDK reads the clock (`now-60;now+expire`), so its module's `time` is replaced for the
    duration of the call only; ours takes the window as an argument. The SDK signs a `None` param
    value as the text "None"; it never passes one itself (it appends a bare `?cancel` to the URL and
    signs no params), so a value-less param is given to it as "".
    """
    conf = CosConfig(
        Region="ap-guangzhou", SecretId=request.secret_id, SecretKey=request.secret_key
    )
    now = request.start + 60
    auth = cos_auth.CosS3Auth(
        conf,
        key=request.path,
        params={name: "" if value is None else value for name, value in request.params.items()},
        expire=request.end - now,
    )
    # CosS3Auth reads only .method, .url (for the host) and .headers of the requests object.
    prepared = SimpleNamespace(
        method=request.method, url=f"https://{request.host}/", headers=dict(request.headers)
    )
    with mock.patch.object(cos_auth, "time", SimpleNamespace(time=lambda: float(now))):
        auth(prepared)
    return str(prepared.headers["Authorization"])


@PROPERTY
@given(request=requests(header_names=SIGNABLE_NAMES + UNSIGNABLE_NAMES))
def test_matches_official_sdk(request: SignedRequest) -> None:
    """Same Authorization as the SDK once we sign what the SDK signs (`select_signed_headers`)."""
    ours = replace(request, headers=signing.select_signed_headers(request.headers)).sign()
    assert ours == sdk_authorization(request)


def test_value_less_param_signs_as_empty_value() -> None:
    """`?cancel` may be given as None or ""; both must sign as `cancel=` (CI's cancel call)."""
    base = VECTORS_BY_NAME["ci-notes-post-jobs"].request
    as_none = replace(base, method="PUT", path="/jobs/j1", params={"cancel": None}).sign()
    as_empty = replace(base, method="PUT", path="/jobs/j1", params={"cancel": ""}).sign()
    assert as_none == as_empty
    assert "&q-url-param-list=cancel&" in as_none


@PROPERTY
@given(request=requests())
def test_none_and_empty_param_values_sign_the_same(request: SignedRequest) -> None:
    emptied: dict[str, str | None] = {
        name: "" if value is None else value for name, value in request.params.items()
    }
    assert replace(request, params=emptied).sign() == request.sign()


# --------------------------------------------------------------------------------------------
# 3 (ii). The verifier: round trip and tamper detection


@PROPERTY
@given(request=requests())
def test_verifier_accepts_what_authorization_produced(request: SignedRequest) -> None:
    assert verify(request, request.sign())


@PROPERTY
@given(request=requests(), data=st.data())
def test_verifier_rejects_any_single_change(request: SignedRequest, data: st.DataObject) -> None:
    """Sign, then change one signed thing in what the request carries: it must not verify."""
    authorization = request.sign()
    targets = ["method", "path", "secret_key", "header"]  # `host` is always a signed header
    if request.params:
        targets.append("param")
    target = data.draw(st.sampled_from(targets), label="target")

    tampered: SignedRequest
    if target == "method":
        others = [m for m in METHODS if m != request.method.upper()]
        tampered = replace(request, method=data.draw(st.sampled_from(others), label="method"))
    elif target == "path":
        tampered = replace(request, path=data.draw(paths.filter(lambda p: p != request.path)))
    elif target == "secret_key":
        tampered = replace(
            request, secret_key=data.draw(secrets.filter(lambda k: k != request.secret_key))
        )
    elif target == "param":
        name = data.draw(st.sampled_from(sorted(request.params)), label="param")
        old = request.params[name] or ""
        new = data.draw(texts().filter(lambda v: v != old), label="value")
        tampered = replace(request, params={**request.params, name: new})
    else:
        items = request.signed_header_items()
        name = data.draw(st.sampled_from(sorted(items)), label="header")
        new = data.draw(header_values.filter(lambda v: v != items[name]), label="value")
        # Pin `host` into the headers so a changed Host header is what the verifier sees.
        tampered = replace(request, host=None, headers={**items, name: new})

    assert not verify(tampered, authorization)


def test_verifier_reports_a_listed_header_the_request_lacks() -> None:
    """A header named in q-header-list but absent from the request is a mismatch (`KeyError`)."""
    vector = VECTORS_BY_NAME["cos-doc-put-object"]
    headers = dict(vector.request.headers)
    del headers["x-cos-acl"]
    with pytest.raises(KeyError):
        verify(replace(vector.request, headers=headers), vector.expected["authorization"])


# --------------------------------------------------------------------------------------------
# 3 (iii). Header-name case


@PROPERTY
@given(request=requests(), data=st.data())
def test_header_name_case_does_not_change_signature(
    request: SignedRequest, data: st.DataObject
) -> None:
    """Proxies and HTTP libraries re-case header names; the signature must not depend on it."""
    recased = {data.draw(any_case(name)): value for name, value in request.headers.items()}
    lowered = {name.lower(): value for name, value in request.headers.items()}
    signed = request.sign()
    assert replace(request, headers=recased).sign() == signed
    assert replace(request, headers=lowered).sign() == signed


@PROPERTY
@given(host=st.sampled_from(HOSTS), spelling=any_case("host"), request=requests())
def test_host_argument_equals_a_host_header(
    host: str, spelling: str, request: SignedRequest
) -> None:
    without_host = {k: v for k, v in request.headers.items() if k.lower() != "host"}
    via_argument = replace(request, host=host, headers=without_host).sign()
    via_header = replace(request, host=None, headers={**without_host, spelling: host}).sign()
    assert via_argument == via_header


# --------------------------------------------------------------------------------------------
# 3 (iv). Malformed Authorization values

VALID = VECTORS_BY_NAME["cos-doc-get-object"].expected["authorization"]
FIELDS = (
    "q-sign-algorithm",
    "q-ak",
    "q-sign-time",
    "q-key-time",
    "q-header-list",
    "q-url-param-list",
    "q-signature",
)


def with_field(name: str, value: str | None) -> str:
    """The valid value with one field replaced, or dropped when `value` is None."""
    parts = []
    for part in VALID.split("&"):
        if part.partition("=")[0] != name:
            parts.append(part)
        elif value is not None:
            parts.append(f"{name}={value}")
    return "&".join(parts)


def test_valid_authorization_parses() -> None:
    parsed = signing.parse_authorization(VALID)
    assert parsed.algorithm == "sha1"
    assert parsed.secret_id == "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q"
    assert parsed.sign_time == parsed.key_time == (1557989753, 1557996953)
    assert parsed.sign_time_text == parsed.key_time_text == "1557989753;1557996953"
    assert parsed.header_list == ("date", "host")
    assert parsed.param_list == ("response-cache-control", "response-content-type")
    assert parsed.signature == "01681b8c9d798a678e43b685a9f1bba0f6c0e012"


@pytest.mark.parametrize("field", FIELDS)
def test_missing_field_is_rejected(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        signing.parse_authorization(with_field(field, None))


@pytest.mark.parametrize("field", ["q-sign-time", "q-key-time"])
@pytest.mark.parametrize(
    "window",
    [
        "",
        "1557989753",
        "1557989753;",
        ";1557996953",
        "a;b",
        "-1;1557996953",
        "1.5;2",
        "1;2;3",
        "\uff11;\uff12",  # full-width digits: str.isdigit and int() take them
        "\u0661;\u0662",  # Arabic-Indic digits, likewise
    ],
)
def test_bad_time_window_is_rejected(field: str, window: str) -> None:
    with pytest.raises(ValueError, match="time window"):
        signing.parse_authorization(with_field(field, window))


@pytest.mark.parametrize(
    "value",
    ["", "q-sign-algorithm", VALID + "&garbage", VALID.replace("q-ak=", "q-ak", 1), "&" + VALID],
)
def test_part_without_equals_is_rejected(value: str) -> None:
    with pytest.raises(ValueError, match="name=value"):
        signing.parse_authorization(value)


@PROPERTY
@given(
    value=st.one_of(
        texts(max_size=200),
        st.just(VALID).flatmap(lambda v: st.sampled_from([v[:cut] for cut in range(len(v))])),
    )
)
def test_parse_fails_only_with_value_error(value: str) -> None:
    """Whatever a client sends, the verifier gets a result or ValueError, never another crash."""
    with contextlib.suppress(ValueError):
        signing.parse_authorization(value)


# --------------------------------------------------------------------------------------------
# 4. Units

UNRESERVED = set(string.ascii_letters + string.digits + "-_.~")


@pytest.mark.parametrize("code", range(128))
def test_encode_ascii(code: int) -> None:
    """Exactly `-_.~` and ASCII alphanumerics stay bare; everything else is %XX in upper case."""
    char = chr(code)
    expected = char if char in UNRESERVED else f"%{code:02X}"
    assert signing.encode(char) == expected


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("腾讯云", "%E8%85%BE%E8%AE%AF%E4%BA%91"),
        ("é", "%C3%A9"),  # alphanumeric to str.isalnum, but not ASCII: encoded
        ("a b+c/d=e~f", "a%20b%2Bc%2Fd%3De~f"),
        ("\x7f\x00", "%7F%00"),
    ],
)
def test_encode_examples(text: str, encoded: str) -> None:
    assert signing.encode(text) == encoded


ENCODED = re.compile(r"(?:[A-Za-z0-9\-_.~]|%[0-9A-F]{2})*")


@PROPERTY
@given(text=texts(max_size=40))
def test_encode_is_reversible_and_upper_case(text: str) -> None:
    encoded = signing.encode(text)
    assert ENCODED.fullmatch(encoded)
    assert unquote(encoded, errors="strict") == text


@PROPERTY
@given(text=st.text(max_size=300) | st.text(string.printable, min_size=250, max_size=300))
def test_encode_is_quotes(text: str) -> None:
    """ASCII texts are encoded by a translation table, not `quote`: the same text comes out."""
    assert signing.encode(text) == quote(text, safe="-_.~")


# Base64 text (a body's Content-MD5, a token) and its neighbours: escaped by `replace`s when it
# holds nothing else, by the table when it holds one character more (`%`, a space, `:`).
_BASE64_ISH = string.ascii_letters + string.digits + "+/=-_.~"


@PROPERTY
@given(
    text=st.text(_BASE64_ISH, max_size=40)
    | st.builds(lambda a, b, c: a + b + c, st.text(_BASE64_ISH), st.sampled_from("% :\x00é"),
                st.text(_BASE64_ISH))
)  # fmt: skip
def test_base64_texts_are_quoted_as_quote_does(text: str) -> None:
    assert signing._quote(text) == quote(text, safe="-_.~")
    assert signing.encode(text) == quote(text, safe="-_.~")


@PROPERTY
@given(name=texts(max_size=20), value=st.text(_BASE64_ISH, max_size=30) | texts(max_size=300))
def test_a_canonical_pair_is_its_encoded_name_and_value(name: str, value: str) -> None:
    """The pair cache quotes a value without `encode`'s own cache: the same text."""
    assert signing._canonical_pair(name, value) == (
        quote(name, safe="-_.~").lower(),
        quote(value, safe="-_.~"),
    )


@pytest.mark.parametrize(
    "name",
    ["Content-Type", "content-md5", "Host", "x-ci-security-token", "X-Cos-Acl", "x-cos-meta-a"],
)
def test_select_signed_headers_keeps(name: str) -> None:
    assert signing.select_signed_headers({name: "v"}) == {name: "v"}


@pytest.mark.parametrize(
    "name", ["Date", "User-Agent", "Accept", "Accept-Encoding", "Authorization", "X-Cosmos"]
)
def test_select_signed_headers_drops(name: str) -> None:
    assert signing.select_signed_headers({name: "v", "host": "h"}) == {"host": "h"}


@PROPERTY
@given(headers=headers_from(SIGNABLE_NAMES + UNSIGNABLE_NAMES))
def test_select_signed_headers_matches_sdk_filter(headers: Mapping[str, str]) -> None:
    assert signing.select_signed_headers(headers) == cos_auth.filter_headers(headers)


def test_key_time_formats_window() -> None:
    assert signing.key_time(1557989151, 1557996351) == "1557989151;1557996351"


@pytest.mark.parametrize(("start", "end"), [(100, 100), (100, 99), (100, 0)])
def test_key_time_rejects_empty_or_reversed_window(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="end time"):
        signing.key_time(start, end)


def test_relative_path_signs_as_its_absolute_form() -> None:
    """The SDK adds a missing leading slash; so do we, since CI always verifies `/...`."""
    common = dict(
        secret_id="AKIDx",
        secret_key="k",
        method="GET",
        host="h",
        params={},
        headers={},
        start=1,
        end=2,
    )
    assert signing.authorization(path="jobs", **common) == signing.authorization(  # type: ignore[arg-type]
        path="/jobs",
        **common,  # type: ignore[arg-type]
    )
