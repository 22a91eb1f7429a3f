"""Credential-shaped text removed from whatever the gateway passes on from elsewhere.

Why: CI's error text, and the headers and redirects around it, reach the gateway's callers (the
status message, `ErrorInfo` metadata, `RequestInfo`) and its logs. CI, or a proxy or middlebox on
the way, may echo the request back, and the request carries the gateway's `Authorization` (its
SecretId and a signature valid for the rest of its ten-minute window) and its security token.
Handed to an untrusted caller, that is a replayable credential.

`redact` replaces, wherever they appear:

* the values of `q-ak=` and `q-signature=` (the COS signature's SecretId and signature);
* the value after an `Authorization`, security-token, session-token or secret-key name,
  whether written as a header (`name: value`), a parameter (`name=value`), JSON or XML;
* anything shaped like a Tencent SecretId (`AKID` + at least 8 letters or digits), also right
  after a percent-escape (`SecretId%3dAKID...`, `SecretId%253DAKID...`);
* every value in `known` (the SecretIds and tokens the gateway is signing with right now,
  which need not look like any of the above), also percent-encoded however an echo wrote it:
  any of its characters escaped or not, each hex digit in either case (`%2F`, `%2f`, both in
  one value), once or twice (`%252F`), so no encoder's choices let one through
  (`_escaped_pattern`).
* the callback token in a URL of the gateway's own callback receiver
  (`.../ci-callback/<token>/...`): the gateway hands CI that URL with every job, CI may quote it
  in an error's Message, and with the token anyone can post callbacks to the gateway.

Every percent-encoded form is taken encoded once (`q-ak%3D`) or twice (`q-ak%253D`: `%` itself
escaped, as an echo of an already-quoted URL writes it, e.g. a callback URL inside a query string
CI quotes again), each hex digit in either case. Three layers or more are not looked for: no
echo seen quotes what it already quoted twice.

What is left stays readable: CI's code, its message around the redaction, its RequestId.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from collections.abc import Iterable

REDACTED = "[REDACTED]"

# A percent-escape's `%`, written once or encoded again (`%25`): an escape of `/` is `%2F` or,
# in an echo of an already-quoted URL, `%252F`.
_PCT = "%(?:25)?"
# Where a name may start: at a word's start, or right after a percent-escape (`%26name`: its last
# hex digit is a word character, so no word boundary is there), encoded once or twice.
_NAME_START = r"(?:\b|(?<=%[0-9A-Fa-f]{2})|(?<=%25[0-9A-Fa-f]{2}))"
# Names whose value is a secret, however written: a header (`name: value`), a parameter
# (`name=value`), JSON (`"name": "value"`), XML (`<name>value`), or a parameter or header
# percent-encoded in an echoed URL (`name%3Dvalue`, `name%253Dvalue`, `name%3A%20value`).
_SEPARATOR = rf"""["']?\s*(?:[:=]|>|{_PCT}3[AD])(?:\s|{_PCT}20)*["']?"""
# An Authorization value may hold spaces (`Bearer x`): it runs to the end of the line, a quote or
# a tag. A token or key is one word.
_AUTHORIZATION = re.compile(
    rf"(?i)(?P<name>{_NAME_START}authorization{_SEPARATOR})(?P<value>[^\r\n\"'<]+)"
)
_TOKEN = re.compile(
    rf"(?i)(?P<name>{_NAME_START}(?:(?:x-(?:ci|cos)-)?security[-_]?token|session[-_]?token"
    rf"|tmp[-_]?secret[-_]?(?:id|key)|secret[-_]?key){_SEPARATOR})"
    # One word, up to an `&` written as such or percent-encoded (no token holds `%26`).
    rf"(?P<value>(?:(?!{_PCT}26)[^\s\"'<>&,;])+)"
)
# The signature's own parts, also percent-encoded (`q-ak%3D...`, `q-ak%253D...`, in an echoed
# query string, where no word boundary precedes them: `%26q-ak`).
_SIGNATURE_PART = re.compile(
    rf"(?i)(?P<name>q-(?:ak|signature)(?:=|{_PCT}3D))(?P<value>[^&\s\"'<>;,%]+)"
)
# At a word's start, or right after a percent-escape (`SecretId%3DAKID...`: its last hex digit
# is a word character, so no word boundary is there), encoded once or twice (`%253D`).
_SECRET_ID = re.compile(rf"{_NAME_START}AKID[0-9A-Za-z]{{8,}}")
# `gateway.model.CALLBACK_PATH_PREFIX` spelled here (a part of the bottom layer imports no other
# part; tests/test_scrub.py checks the two agree), and a token's alphabet (`callbacks.token`).
GATEWAY_CALLBACK_URL = re.compile(
    rf"(?i)(?P<name>(?:/|{_PCT}2F)ci-callback(?:/|{_PCT}2F))(?P<value>[\w-]+)"
)
"""The path of a URL of the gateway's receiver, whichever replica or public URL made it, also
percent-encoded once or twice (a URL quoted in a query string, or such a query quoted again);
`value` is the token. `redact` removes the token from text; answers show such a URL as
`model.GATEWAY_CALLBACK` (`is_gateway_callback`)."""


def is_gateway_callback(url: str) -> bool:
    """Whether `url` is one of the gateway's receiver URLs (it holds the callback token)."""
    return GATEWAY_CALLBACK_URL.search(url) is not None


_KEEP_NAME = rf"\g<name>{REDACTED}"
# Every pattern above needs one of these (lower-cased) in the text. Checking for them first
# keeps `redact` at about a microsecond on the ordinary line (every access-log line passes
# through it), where the patterns themselves cost tens.
_TRIGGERS = (
    "q-ak",
    "q-signature",
    "authorization",
    "token",
    "secret",
    "akid",
    "ci-callback",
)


# The non-ASCII characters the patterns' case-insensitive matching (`re.IGNORECASE` on `str`)
# takes for an ASCII letter of a trigger: dotted capital and dotless small i, long s, Kelvin's K.
# `str.lower()` alone misses two of them (U+0131, U+017F stay themselves) and turns U+0130 into two
# characters (`i` and a combining dot), so a trigger spelled with them would pass the check
# while the patterns still matched. tests/test_scrub.py finds them over all of Unicode.
RE_FOLDED = {"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"}
_AS_RE_FOLDS = str.maketrans(RE_FOLDED)


def may_hold_secrets(text: str) -> bool:
    """False when no pattern of `redact` can match anywhere in `text` (no trigger word in it).
    Several texts can be checked at once joined by a newline: no trigger spans one."""
    lowered = text.lower() if text.isascii() else text.translate(_AS_RE_FOLDS).lower()
    # A plain loop: `any()` over a generator costs ~40% more, on every line and CI answer.
    for trigger in _TRIGGERS:  # noqa: SIM110
        if trigger in lowered:
            return True
    return False


def redact(text: str, known: Iterable[str] = ()) -> str:
    """`text` with every credential-shaped part replaced by `[REDACTED]` (see the module)."""
    for secret in known:
        if not secret:
            continue
        # Only an escape can hide one; the pattern also takes it as it is.
        pattern = _escaped_pattern(secret) if "%" in text else None
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        elif secret in text:
            text = text.replace(secret, REDACTED)
    if not may_hold_secrets(text):
        return text
    text = _SIGNATURE_PART.sub(_KEEP_NAME, text)
    text = _AUTHORIZATION.sub(_KEEP_NAME, text)
    text = _TOKEN.sub(_KEEP_NAME, text)
    text = GATEWAY_CALLBACK_URL.sub(_KEEP_NAME, text)
    return _SECRET_ID.sub(REDACTED, text)


class RecentSecrets:
    """The last few distinct secret values the gateway used, for `redact(known=...)`.

    Bounded (`limit`, oldest forgotten first): credentials rotate a few times a day, and an
    echo can only carry values that were sent recently.
    """

    def __init__(self, limit: int = 16) -> None:
        self._limit = limit
        self._values: OrderedDict[str, None] = OrderedDict()
        # What the last `note` was given, and `values()` as of then: every CI attempt notes
        # the same credentials again and reads the values back, and the credentials change a
        # few times a day at most.
        self._last: tuple[str | None, ...] = ()
        self._snapshot: tuple[str, ...] = ()

    def note(self, *values: str | None) -> None:
        if values == self._last:
            return  # already the most recent, in this order
        for value in values:
            if not value:
                continue
            self._values[value] = None
            self._values.move_to_end(value)
            while len(self._values) > self._limit:
                self._values.popitem(last=False)
        self._last = values
        self._snapshot = tuple(self._values)

    def values(self) -> tuple[str, ...]:
        """Each value, oldest first (`redact` finds each written percent-encoded too)."""
        return self._snapshot


# Characters no percent-encoder escapes (RFC 3986's unreserved, but `~`, which older encoders
# and JavaScript's `escape` do): a pattern takes them only as they are.
_NEVER_ESCAPED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def _escape_in_any_case(character: str) -> str:
    """A regex for `character` percent-encoded (its UTF-8 bytes), each hex digit either case,
    each `%` as it is or encoded again (`%25`)."""
    return "".join(
        _PCT + "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in f"{byte:02X}")
        for byte in character.encode("utf-8", "surrogatepass")
    )


@functools.lru_cache(maxsize=64)
def _escaped_pattern(value: str) -> re.Pattern[str] | None:
    """A regex for every way an echo may write `value` percent-encoded: a query string or a
    signature's header list escapes `+`, `/` and `=` (a security token holds them), a path
    keeps `/`, other encoders keep or escape other characters, and any may write hex in lower
    or upper case, even mixed in one value, so no list of spellings can be complete. None
    when `value` has no character to escape (it is then only ever written as it is).

    Each character is its escape (once or twice: `%2F`, `%252F`) or itself, the longer first
    (`%25` before a bare `%`); so the pattern is as long as `value`, and only a `%` in `value`
    or a `%25` in the text (whose forms start alike) can make its search try more than one way
    at a place, a few at most. Cached: `redact` sees the same few
    values on every answer (64 covers `RecentSecrets`' 16 and a proxy's few, and rotation)."""
    if _NEVER_ESCAPED.issuperset(value):
        return None
    return re.compile(
        "".join(
            re.escape(c) if c in _NEVER_ESCAPED else f"(?:{_escape_in_any_case(c)}|{re.escape(c)})"
            for c in value
        )
    )
