"""`gateway.scrub`: what counts as credential-shaped, and what is left alone."""

from __future__ import annotations

import functools
import re
import sys
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import scrub
from gateway.scrub import REDACTED, RecentSecrets, may_hold_secrets, redact

SECRET_ID = "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q"  # ci-api-notes' worked example
SIGNATURE = "4fdc834ee844f2b11df0da97475f187e76be4237"
AUTHORIZATION = (
    f"q-sign-algorithm=sha1&q-ak={SECRET_ID}&q-sign-time=1700000000;1700003600"
    "&q-key-time=1700000000;1700003600&q-header-list=host&q-url-param-list="
    f"&q-signature={SIGNATURE}"
)
TOKEN = "Xk9+/tokenWithSpecials=EXAMPLE_SESSION_TOKEN.v2~ABC/def+ghi=="
CALLBACK_TOKEN = "Q2hhbmdlTWU-callback_token-0123456789"  # `callbacks.token`'s alphabet


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: {AUTHORIZATION}\r\nHost: x",
        f"authorization={AUTHORIZATION}",
        f'{{"Authorization": "{AUTHORIZATION}"}}',
        f"<Authorization>{AUTHORIZATION.replace('&', '&amp;')}</Authorization>",
        AUTHORIZATION,  # the bare value: its parts are recognised
        AUTHORIZATION.replace("=", "%3D").replace("&", "%26"),  # percent-encoded in a query
        f"x-ci-security-token: {TOKEN}\nx-cos-security-token: {TOKEN}",
        f"SecurityToken={TOKEN}; sessionToken={TOKEN}",
        f"The SecretId {SECRET_ID} does not exist",
        f"CallBack http://gw:8080/ci-callback/{CALLBACK_TOKEN}/b-1250000000/ap-guangzhou",
        f"callBack=http%3A%2F%2Fgw%2Fci-callback%2F{CALLBACK_TOKEN}%2Fb",
        f"SecretId%3D{SECRET_ID}%26x=1",  # after an escape: no word boundary before it
        f"secretid%3d{SECRET_ID}",
    ],
)
def test_credential_shaped_text_is_redacted(text: str) -> None:
    cleaned = redact(text)
    assert REDACTED in cleaned
    for secret in (SECRET_ID, SIGNATURE, TOKEN, AUTHORIZATION, CALLBACK_TOKEN):
        assert secret not in cleaned


def test_a_bearer_authorization_is_redacted_whole() -> None:
    assert redact("authorization: Bearer tok-123 more") == f"authorization: {REDACTED}"


def test_known_values_are_redacted_whatever_their_shape() -> None:
    assert redact("echo: sid-1234 / tok-abc", known=("sid-1234", "tok-abc", "")) == (
        f"echo: {REDACTED} / {REDACTED}"
    )


@pytest.mark.parametrize(
    "text",
    [
        "The QueueId p2242ab62c7c94486915508540933a2c6 is invalid",
        "MissingAuthorization: the request is not signed",
        "InvalidToken: the token has expired",
        "NjJmMzI5MmRfOTBmYTUwNjRfNjcwM18x",
        "the /ci-callback receiver refused it",
        "",
    ],
)
def test_ordinary_ci_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


@functools.cache
def _matched_by_ignorecase(letter: str) -> tuple[str, ...]:
    """Every character `re.IGNORECASE` on `str` takes for `letter` (the patterns' own matching)."""
    return tuple(set(re.findall(f"(?i){re.escape(letter)}", _EVERY_CHARACTER)))


_EVERY_CHARACTER = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000)


def test_every_spelling_the_patterns_match_is_a_trigger() -> None:
    """`may_hold_secrets` is only a shortcut: where it says no, `redact` skips its patterns.
    So a trigger word spelled with any character the patterns' case-insensitive matching takes
    for one of its letters (Kelvin's K, dotted or dotless i, long s, ...) must still count."""
    non_ascii: set[str] = set()
    for trigger in scrub._TRIGGERS:
        for at, letter in enumerate(trigger):
            for spelling in _matched_by_ignorecase(letter):
                non_ascii.update(c for c in spelling if not c.isascii())
                respelled = trigger[:at] + spelling + trigger[at + 1 :]
                assert may_hold_secrets(f"x {respelled} y"), ascii(respelled)
    assert non_ascii == set(scrub.RE_FOLDED)


@pytest.mark.parametrize(
    "text",
    ["\u017fecret_key=abc123", "author\u0131zation: abc123", "Author\u0130zation: abc123",
     "x-cos-security-to\u212aen: abc123", "SE\u017fSION_TOKEN=abc123"],
)  # fmt: skip
def test_unusually_spelled_names_are_redacted(text: str) -> None:
    cleaned = redact(text)
    assert "abc123" not in cleaned and cleaned.endswith(REDACTED)


def test_recent_secrets_keep_the_latest_distinct_values_only() -> None:
    recent = RecentSecrets(limit=3)
    recent.note("a", None, "b", "")
    recent.note("a", "c", "d")
    assert recent.values() == ("a", "c", "d")  # "b" was the oldest; "a" was used again


def test_recent_secrets_are_known_percent_encoded_too() -> None:
    recent = RecentSecrets()
    recent.note(SECRET_ID, TOKEN)
    for text in (
        f"echo {quote(TOKEN, safe='')} end",
        "echo " + re.sub("%..", lambda m: m.group().lower(), quote(TOKEN, safe="")) + " end",
        f"GET /jobs?t={quote(TOKEN)} HTTP/1.1",
        f"echo {TOKEN} and {SECRET_ID} end",
    ):
        cleaned = redact(text, known=recent.values())
        assert "EXAMPLE_SESSION_TOKEN" not in cleaned and SECRET_ID not in cleaned, cleaned
        assert cleaned.startswith(("echo [REDACTED]", "GET /jobs?t=[REDACTED]")), cleaned


def test_the_callback_pattern_is_the_receivers_path() -> None:
    """`scrub` spells the receiver's path itself (the bottom layer's parts import no other):
    it must recognise every URL `callback_url` makes, and keep its token out of text."""
    from gateway.jobs.callbacks import callback_url
    from gateway.model import CALLBACK_PATH_PREFIX, Target
    from gateway.scrub import is_gateway_callback

    url = callback_url("https://gw.example/base/", CALLBACK_TOKEN, Target("b-1250000000", "ap-gz"))
    assert CALLBACK_PATH_PREFIX in url and is_gateway_callback(url)
    assert CALLBACK_TOKEN not in redact(f"CallBack {url} refused")
    assert not is_gateway_callback("https://example.com/my-callback/x")


# What a secret may hold: the base64 and URL characters a token or password has, `%` itself,
# and a few non-ASCII letters (a password's); each is one a percent-encoder may escape.
_SECRET_CHARACTERS = st.sampled_from(
    [*"AKIDakid0129+/=_.-~%&?:;@ !*'()", "\u00e4", "\u00df", "\u20ac", "\u4e2d"]
)
# Text an echo may put just before or after it, `%` too (a stray one, or an escape's start).
_AROUND = st.sampled_from(["", "echo ", "GET /jobs?t=", "x=%", "%2", "%25", " end", "&b=1", "%"])


@st.composite
def _written(draw: st.DrawFn, secret: str, *, twice: bool = False) -> str:
    """`secret` as some echo could write it: each character that is not a letter, digit or
    one of `_.-` either kept or percent-encoded (UTF-8), each hex digit in either case; with
    `twice`, each escape's `%` may be encoded again (`%252F`)."""
    parts = []
    for character in secret:
        if character in _NEVER_ESCAPED or not draw(st.booleans(), label="escape"):
            parts.append(character)
            continue
        for byte in character.encode():
            digits = f"{byte:02X}"
            pct = "%25" if twice and draw(st.booleans(), label="twice") else "%"
            parts.append(pct + "".join(d.lower() if draw(st.booleans()) else d for d in digits))
    return "".join(parts)


_NEVER_ESCAPED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


@settings(max_examples=800, deadline=None)
@given(
    secret=st.text(_SECRET_CHARACTERS, min_size=8, max_size=40),
    data=st.data(),
    before=_AROUND,
    after=_AROUND,
    twice=st.booleans(),
)
def test_a_known_secret_is_redacted_however_percent_encoded(
    secret: str, data: st.DataObject, before: str, after: str, twice: bool
) -> None:
    """Whichever characters an echo escapes and in whichever hex case (`%2f`, `%2F`, both
    within one value), a secret the gateway signed with does not pass `redact`; nor when an
    echo of an already-quoted URL writes each escape's `%` escaped again (`%252B`, `twice`), in
    any mix of one and two layers."""
    written = data.draw(_written(secret, twice=twice), label="written")
    recent = RecentSecrets()
    recent.note(secret)
    assert redact(before + written + after, known=recent.values()) == before + REDACTED + after


def _cleaned(text: str) -> str:
    """`redact(text)`, checked: the fast look (`may_hold_secrets`) sends `text` to the
    patterns, and none of the signature's or the callback URL's secrets is left."""
    assert may_hold_secrets(text)
    cleaned = redact(text)
    for secret in (SECRET_ID, SIGNATURE, CALLBACK_TOKEN):
        assert secret not in cleaned, cleaned
    return cleaned


@st.composite
def _recased(draw: st.DrawFn, text: str) -> str:
    """`text` with each hex digit of each of its percent-escapes (`%2F`, `%252F`) in either
    case."""
    return re.sub(
        "%(?:25)?[0-9A-F]{2}",
        lambda m: "".join(c.lower() if draw(st.booleans()) else c for c in m.group()),
        text,
    )


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_the_patterns_find_their_percent_encoded_forms_in_any_hex_case(
    data: st.DataObject,
) -> None:
    """No `known` here: the patterns themselves (`q-ak%3D`, `%2Fci-callback%2F`) and the fast
    look before them (`may_hold_secrets`), over an echoed query string with each escape's
    hex digits in random case."""
    callback = f"http://gw:8080/ci-callback/{CALLBACK_TOKEN}/b-1250000000/ap-guangzhou"
    query = f"a=1&auth={quote(AUTHORIZATION, safe='')}&callBack={quote(callback, safe='')}"
    text = data.draw(_recased(f"GET /jobs?{query} HTTP/1.1"), label="text")
    _cleaned(text)


@pytest.mark.parametrize(
    "text",
    [
        AUTHORIZATION.replace("=", "%3d").replace("&", "%26"),
        AUTHORIZATION.replace("q-ak=", "q-ak%3d").replace("q-signature=", "q-signature%3D"),
        f"callBack=http%3a%2f%2fgw%2Fci-callback%2f{CALLBACK_TOKEN}%2fb",
        f"callBack=http%3A%2F%2Fgw%2fci-callback%2F{CALLBACK_TOKEN}%2Fb",
    ],
)
def test_the_patterns_take_percent_escapes_in_either_case(text: str) -> None:
    """The patterns' own percent-encoded names and separators (`q-ak%3D`, `%2Fci-callback%2F`)
    in lower or mixed case too; and the fast look (`may_hold_secrets`) still sends them there."""
    _cleaned(text)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_the_patterns_find_their_forms_percent_encoded_twice_in_any_hex_case(
    data: st.DataObject,
) -> None:
    """No `known`: an echoed query string quoted once more (`q-ak%253D`, `q-signature%253D`,
    `%252Fci-callback%252F<token>`, `SecretId%253DAKID...`), each escape's hex digits in random
    case, reaches the patterns (`may_hold_secrets`) and leaves none of its secrets."""
    callback = f"http://gw:8080/ci-callback/{CALLBACK_TOKEN}/b-1250000000/ap-guangzhou"
    query = (
        f"a=1&auth={quote(AUTHORIZATION, safe='')}&callBack={quote(callback, safe='')}"
        f"&echo={quote(f'SecretId={SECRET_ID}', safe='')}"
    )
    url = f"https://ci.example/jobs?{query}"
    text = data.draw(_recased(f"upstream said: url={quote(url, safe='')} refused"), label="text")
    for form in ("q-ak%253D", "q-signature%253D", "%252Fci-callback%252F", "SecretId%253DAKID"):
        assert form.lower() in text.lower()
    _cleaned(text)


@pytest.mark.parametrize(
    "text",
    [
        f"q-ak%253D{SECRET_ID}%2526q-signature%253d{SIGNATURE}",
        f"callBack%3Dhttp%253A%252F%252Fgw%252fci-callback%252F{CALLBACK_TOKEN}%252Fb",
        f"x%3DSecretId%253D{SECRET_ID}%2526y",
        f"secretid%253d{SECRET_ID}",
    ],
)
def test_the_patterns_take_forms_percent_encoded_twice(text: str) -> None:
    cleaned = _cleaned(text)
    assert REDACTED in cleaned


TOKEN = "Zm9vYmFy+dG9rZW4/c2VjcmV0=="  # a security token's alphabet: base64 with + / =


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    name=st.sampled_from(
        [
            "x-cos-security-token",
            "x-ci-security-token",
            "SecurityToken",
            "tmpSecretKey",
            "SecretKey",
        ]
    ),
    separator=st.sampled_from(["=", ": ", ":"]),
    twice=st.booleans(),
)
def test_named_secrets_are_redacted_in_an_echoed_url(
    data: st.DataObject, name: str, separator: str, twice: bool
) -> None:
    """A token or key parameter (or a header written into a query) quoted in an echoed URL:
    its separator percent-encoded (`name%3Dvalue`, `name%3A%20value`), once or twice, after an
    escaped `&` (`%26name`: no word boundary there), each escape's hex in random case; and an
    `Authorization` header so quoted. The parameter after it stays readable."""
    param = f"{name}{separator}{TOKEN}"
    header = f"Authorization: {AUTHORIZATION}"
    url = f"https://ci.example/jobs?a=1&{param}&b=kept"
    text = quote(url, safe="")
    if twice:
        text = quote(text, safe="")
    text = data.draw(_recased(f"echo: {text} / {quote(header, safe='')}"), label="text")
    assert may_hold_secrets(text)
    cleaned = redact(text)
    for secret in (TOKEN, quote(TOKEN, safe=""), SECRET_ID, SIGNATURE):
        assert secret.lower() not in cleaned.lower(), cleaned
    assert "b%253dkept" in cleaned.lower() if twice else "b%3dkept" in cleaned.lower()
