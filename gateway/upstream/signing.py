"""The COS XML request signature (`q-sign-algorithm=sha1`) that every CI call carries.

Pure functions, no clock, no I/O, no logging: the caller passes the key time window, which makes
every step reproducible against Tencent's published worked examples. Each step is a function
named as in Tencent's description (sign key, HttpString, StringToSign, signature), so a failing
test says which step went wrong. The emulator verifies with the same steps, fed from what the
request actually carried, the way CI does.

The algorithm, in short::

    SignKey      = hex(HMAC-SHA1(SecretKey, "<start>;<end>"))
    HttpString   = lower(method) \\n raw-path \\n encoded-params \\n encoded-headers \\n
    StringToSign = "sha1" \\n "<start>;<end>" \\n hex(SHA1(HttpString)) \\n
    Signature    = hex(HMAC-SHA1(SignKey-as-hex-text, StringToSign))
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

ALGORITHM = "sha1"

# Headers the official Python SDK signs when present (besides every x-cos-* and x-ci-* header).
# Date, User-Agent, Accept* and Authorization are never signed: proxies may rewrite them.
SIGNABLE_HEADERS = frozenset(
    {
        "cache-control",
        "content-disposition",
        "content-encoding",
        "content-type",
        "content-md5",
        "content-length",
        "expect",
        "expires",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-unmodified-since",
        "origin",
        "range",
        "transfer-encoding",
        "pic-operations",
    }
)
SIGNABLE_HEADER_PREFIXES = ("x-cos-", "x-ci-")

_SIGN_KEY_CACHE_SIZE = 8
"""Sign keys remembered, most recent first: one per live (secret key, window) pair is plenty."""

Params = Mapping[str, str | None]
"""Query parameters; `None` (or "") is a value-less flag such as `?cancel`."""


_ENCODE_CACHE_SIZE = 1024
_ENCODE_CACHE_MAX_CHARS = 256
"""Only short texts are remembered, so the cache stays under ~1 MiB whatever it is fed."""
_PAIR_CACHE_SIZE = 256


def encode(text: str) -> str:
    """Percent-encode UTF-8 with only ``-_.~`` and alphanumerics bare, upper-case hex."""
    # Header names and values and query params repeat from request to request (Host,
    # Content-Type, the token, list filters): a cache hit costs ~0.1 us, `quote` 0.4-1.7 us.
    if len(text) <= _ENCODE_CACHE_MAX_CHARS:
        return _cached_quote(text)
    return _quote(text)


@functools.lru_cache(maxsize=_ENCODE_CACHE_SIZE)
def _cached_quote(text: str) -> str:
    return _quote(text)


# `quote(text, safe="-_.~")` of ASCII text, one character at a time: its UTF-8 is itself, so
# each character not left bare becomes its own `%XX`. Texts that miss the cache (a body's
# Content-MD5, once per submit) then cost one `str.translate` instead of `quote`'s steps. The
# table names every ASCII character, the bare ones as themselves: a character a table lacks
# costs `translate` a LookupError raised and cleared (a 24-character MD5: 16.7k instructions
# with the escapes alone, 8.8k with every character), and a tuple is indexed without hashing.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_ASCII_ESCAPES = tuple(
    chr(code) if chr(code) in _UNRESERVED else f"%{code:02X}" for code in range(128)
)


# The characters of base64 text (a body's Content-MD5, a security token) beside the unreserved
# ones, and their escapes: such a text is escaped by three `replace`s, ~40% of `translate`'s
# cost (whose table maps many characters to several, its slow path). `%` is not among them.
_BASE64_ISH = _UNRESERVED | {"+", "/", "="}
_BASE64_ISH_BYTES = "".join(sorted(_BASE64_ISH)).encode()


def _quote(text: str) -> str:
    if not text.isascii():
        return quote(text, safe="-_.~")
    if not text.encode().translate(None, _BASE64_ISH_BYTES):  # nothing but those characters
        return text.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    return text.translate(_ASCII_ESCAPES)


def select_signed_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Pick the headers a well-behaved client signs, as the official SDK does."""
    return {name: value for name, value in headers.items() if _is_signable(name)}


@functools.lru_cache(maxsize=_ENCODE_CACHE_SIZE)
def _is_signable(name: str) -> bool:
    lower = name.lower()
    return lower in SIGNABLE_HEADERS or lower.startswith(SIGNABLE_HEADER_PREFIXES)


def key_time(start: int, end: int) -> str:
    if end <= start:
        raise ValueError("the signature's end time must be after its start time")
    return f"{start};{end}"


def sign_key(secret_key: str, key_time_value: str) -> str:
    return hmac.digest(secret_key.encode(), key_time_value.encode(), "sha1").hex()


@functools.lru_cache(maxsize=_SIGN_KEY_CACHE_SIZE)
def _window_signer(secret_key: str, key_time_value: str) -> _HmacSha1:
    """HMAC under the sign key of (secret key, window): derived once per window, since every
    request signed within one window shares it (a gateway under load signs hundreds)."""
    return _HmacSha1(sign_key(secret_key, key_time_value).encode())


class _HmacSha1:
    """HMAC-SHA1 (RFC 2104) under one key, with the key's inner and outer pad blocks hashed
    once: each message then costs two `copy()`s and two short updates, ~0.6 us against ~1.6 us
    for `hmac.new`/`hmac.digest`, which redo the key schedule on every call."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _SHA1_BLOCK:
            key = hashlib.sha1(key).digest()  # noqa: S324 - HMAC-SHA1 is the protocol's
        key = key.ljust(_SHA1_BLOCK, b"\0")
        self._inner = hashlib.sha1(key.translate(_IPAD))  # noqa: S324
        self._outer = hashlib.sha1(key.translate(_OPAD))  # noqa: S324

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


_SHA1_BLOCK = 64
_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))


@functools.lru_cache(maxsize=_SIGN_KEY_CACHE_SIZE)
def _hmac_under(sign_key_value: str) -> _HmacSha1:
    return _HmacSha1(sign_key_value.encode())


def canonical_pairs(items: Iterable[tuple[str, str | None]]) -> list[tuple[str, str]]:
    """Encode names and values, lower-case the encoded names only, sort by name (byte order)."""
    pairs = [_canonical_pair(name, value or "") for name, value in items]
    pairs.sort()
    return pairs


@functools.lru_cache(maxsize=_PAIR_CACHE_SIZE)
def _canonical_pair(name: str, value: str) -> tuple[str, str]:
    # Most pairs a signer sees repeat from request to request (Host, Content-Type, the token,
    # list filters): one cache lookup then replaces two encodings and a lower(). Signers sign
    # the caller's own headers and params (bounded by the caller: a token is ~1-2 KiB), so
    # `_PAIR_CACHE_SIZE` entries stay small; verifiers use `encode`, which caches short texts only.
    # The value is quoted without `encode`'s cache: a pair missed here is a value seen with
    # another name at most (a body's Content-MD5 on every submit: one cache miss, not two).
    return encode(name).lower(), _quote(value)


def format_pairs(pairs: list[tuple[str, str]]) -> str:
    # `map` with C callables: no Python frame per pair (every request formats its headers').
    return "&".join(map("=".join, pairs))


def http_string(
    method: str, path: str, params: list[tuple[str, str]], headers: list[tuple[str, str]]
) -> str:
    return _http_text(method, path, format_pairs(params), format_pairs(headers))


def _http_text(method: str, path: str, params: str, headers: str) -> str:
    """The HttpString of formatted params and headers (`format_pairs`, or `_Names.format`)."""
    # A relative path would sign differently from what CI verifies (it always sees a leading /).
    path = path if path.startswith("/") else "/" + path
    return f"{method.lower()}\n{path}\n{params}\n{headers}\n"


def string_to_sign(key_time_value: str, http_string_value: str) -> str:
    digest = hashlib.sha1(http_string_value.encode()).hexdigest()  # noqa: S324 - mandated by the protocol
    return f"{ALGORITHM}\n{key_time_value}\n{digest}\n"


def signature(sign_key_value: str, string_to_sign_value: str) -> str:
    # The key is the 40-character hex *text* of the sign key, not its bytes. Every request of a
    # key-time window is signed under the same key, hence the cached pad blocks.
    return _hmac_under(sign_key_value).hexdigest(string_to_sign_value.encode())


def authorization(
    *,
    secret_id: str,
    secret_key: str,
    method: str,
    host: str | None,
    path: str,
    params: Params,
    headers: Mapping[str, str],
    start: int,
    end: int,
    only_signable: bool = False,
) -> str:
    """Return the `Authorization` header value for one request.

    `path` is the raw, unencoded resource path (``/jobs``, ``/视频/a+b.mp4``). Every header and
    param given is signed, or with `only_signable` only the headers the official SDK signs (the
    same as passing `select_signed_headers(headers)`, without building that dict per request).
    `host` is signed as the `host` header unless `headers` already carries one.
    """
    header_items: Mapping[str, str] = headers
    if host is not None and not any(name.lower() == "host" for name in headers):
        header_items = {**headers, "host": host}
    window, signer, head = _window(secret_id, secret_key, start, end)
    # `_names`' own look-up first, inline: one call less on every request.
    header_names = _NAMES.get((tuple(header_items), only_signable), _UNSEEN)
    if header_names is _UNSEEN:
        header_names = _names(tuple(header_items), only_signable)
    param_names = _names(tuple(params), False) if params else _NO_NAMES
    if header_names is None or param_names is None:  # names that differ only in case
        if only_signable:
            header_items = select_signed_headers(header_items)
        header_pairs = canonical_pairs(header_items.items())
        param_pairs = canonical_pairs(params.items()) if params else []
        http = http_string(method, path, param_pairs, header_pairs)
        lists = (
            f"&q-header-list={';'.join(map(_NAME, header_pairs))}"
            f"&q-url-param-list={';'.join(map(_NAME, param_pairs))}"
        )
    else:
        formatted_params = param_names.format(params) if params else ""
        http = _http_text(method, path, formatted_params, header_names.format(header_items))
        lists = header_names.header_list + param_names.param_list
    to_sign = string_to_sign(window, http)
    return f"{head}{lists}&q-signature={signer.hexdigest(to_sign.encode())}"


class _Names:
    """What a request's header (or param) names alone decide, worked out once per set of
    names: the order they are signed in, each one's encoded lower-case spelling, and the list of
    them the Authorization names. A CI client sends the same few names on every request, so
    only the values are looked at per request. `canonical_pairs`' rule exactly: with no two
    names equal once encoded and lower-cased (`_names` makes no `_Names` otherwise), sorting
    the pairs is sorting the names."""

    __slots__ = ("_get", "_last", "_prefixes", "_template", "header_list", "keys", "param_list")

    def __init__(self, keys: tuple[str, ...]) -> None:
        spelled = sorted((encode(key).lower(), key) for key in keys)
        names = [name for name, _ in spelled]
        self.keys = tuple(key for _, key in spelled)
        # `itemgetter` of one key gives the value, not a tuple of one: rare enough to spell.
        self._get: Callable[[Mapping[str, str | None]], tuple[str | None, ...]] = (
            operator.itemgetter(*self.keys)
            if len(keys) > 1
            else functools.partial(_values, self.keys)
        )
        # The last values formatted and their text: a describe's or a listing's repeat from
        # request to request (the host, a token, the same filters), a submit's differ (its
        # body's Content-MD5). One entry, replaced whole.
        self._last: tuple[tuple[str | None, ...], str] = ((), "")
        self._prefixes = tuple(f"{name}=" for name in names)
        # The pairs with `:` for `=`: no encoded name holds a `:`, `+`, `/` or `=`, so the
        # base64 escapes and then `:` -> `=` over the whole text touch the values' characters
        # alone (`format`).
        self._template = "&".join(f"{name.replace('%', '%%')}:%s" for name in names)
        self.header_list = f"&q-header-list={';'.join(names)}"
        self.param_list = f"&q-url-param-list={';'.join(names)}"

    def format(self, items: Mapping[str, str | None]) -> str:
        """`format_pairs(canonical_pairs(items.items()))`, for `items` holding this set's keys
        (others are left out)."""
        values = self._get(items)
        last_values, last_text = self._last
        if values == last_values:
            return last_text
        try:
            others = "".join(values).encode().translate(None, _BASE64_ISH_BYTES)  # type: ignore[arg-type]
        except (TypeError, UnicodeEncodeError):  # a None (a value-less param); a lone surrogate
            others = b"?"
        if not others:
            # Every value base64 text or bare (a body's Content-MD5, a type, a length, a
            # host): the three escapes `_quote` makes of such a text, made on all at once.
            text = (
                (self._template % values)
                .replace("+", "%2B")
                .replace("/", "%2F")
                .replace("=", "%3D")
                .replace(":", "=")
            )
        else:
            text = "&".join(
                prefix + (encode(value) if value else "")
                for prefix, value in zip(self._prefixes, values, strict=True)
            )
        self._last = (values, text)
        return text


def _values(keys: tuple[str, ...], items: Mapping[str, str | None]) -> tuple[str | None, ...]:
    return tuple(map(items.__getitem__, keys))


_NAMES_CACHE_SIZE = 64
"""Sets of names remembered: a client signs a handful (a submit's, a describe's, a listing's,
with and without a token or a traceparent)."""
_NAMES_MAX_CHARS = 1024
"""Sets of names longer than this together are not remembered, so the cache stays small
whatever it is fed (a CI client's are a few dozen characters)."""
_NAMES: dict[tuple[tuple[str, ...], bool], _Names | None] = {}
_UNSEEN = _Names(())  # a marker only: `_NAMES` has no entry


def _names(keys: tuple[str, ...], only_signable: bool) -> _Names | None:
    """The `_Names` of `keys` (only the signable ones with `only_signable`), or None when two of
    them are one name once encoded and lower-cased: their values then decide their order.
    Remembered in `_NAMES` while it has room, for sets of names that are not too long."""
    known = _NAMES.get((keys, only_signable), _UNSEEN)
    if known is not _UNSEEN:
        return known
    names = keys
    if only_signable:
        names = tuple(key for key in keys if _is_signable(key))
    found = None if len({encode(key).lower() for key in names}) < len(names) else _Names(names)
    if len(_NAMES) < _NAMES_CACHE_SIZE and sum(map(len, keys)) <= _NAMES_MAX_CHARS:
        _NAMES[keys, only_signable] = found
    return found


_NO_NAMES = _Names(())


_NAME = operator.itemgetter(0)  # a pair's name


@functools.lru_cache(maxsize=_SIGN_KEY_CACHE_SIZE)
def _window(secret_id: str, secret_key: str, start: int, end: int) -> tuple[str, _HmacSha1, str]:
    """What every request signed with these keys in this window shares: the key-time text,
    the HMAC under its sign key, and the Authorization's first fields. A signer reading the
    clock in whole seconds asks for the same window all second long."""
    window = key_time(start, end)
    head = f"q-sign-algorithm={ALGORITHM}&q-ak={secret_id}&q-sign-time={window}&q-key-time={window}"
    return window, _window_signer(secret_key, window), head


@dataclass(frozen=True)
class ParsedAuthorization:
    """The fields of an `Authorization` value, as a verifier needs them."""

    algorithm: str
    secret_id: str
    sign_time: tuple[int, int]
    key_time: tuple[int, int]
    header_list: tuple[str, ...]
    param_list: tuple[str, ...]
    signature: str
    # The windows as the header spells them: the signature covers this text (SignKey is
    # HMAC(SecretKey, q-key-time), StringToSign holds q-sign-time), never a re-spelling of the
    # numbers (`0170…` is the same second but not the same text).
    sign_time_text: str
    key_time_text: str


_REQUIRED_FIELDS = (
    "q-sign-algorithm",
    "q-ak",
    "q-sign-time",
    "q-key-time",
    "q-header-list",
    "q-url-param-list",
    "q-signature",
)


def _parse_window(text: str) -> tuple[int, int]:
    start, sep, end = text.partition(";")
    # ASCII digits only: `str.isdigit` alone also takes full-width (U+FF11) or superscript ones.
    if not sep or not (start + end).isascii() or not start.isdigit() or not end.isdigit():
        raise ValueError("a time window must be '<start>;<end>' in Unix seconds")
    return int(start), int(end)


def _parse_names(text: str) -> tuple[str, ...]:
    return tuple(name for name in text.split(";") if name)


def parse_authorization(value: str) -> ParsedAuthorization:
    """Split an `Authorization` value into its fields; `ValueError` if it is malformed."""
    fields: dict[str, str] = {}
    for part in value.strip().split("&"):
        name, sep, field_value = part.partition("=")
        if not sep:
            raise ValueError("every Authorization field must be 'name=value'")
        fields[name.strip()] = field_value.strip()
    missing = [name for name in _REQUIRED_FIELDS if name not in fields]
    if missing:
        raise ValueError(f"Authorization lacks {', '.join(missing)}")
    return ParsedAuthorization(
        algorithm=fields["q-sign-algorithm"],
        secret_id=fields["q-ak"],
        sign_time=_parse_window(fields["q-sign-time"]),
        key_time=_parse_window(fields["q-key-time"]),
        header_list=_parse_names(fields["q-header-list"]),
        param_list=_parse_names(fields["q-url-param-list"]),
        signature=fields["q-signature"],
        sign_time_text=fields["q-sign-time"],
        key_time_text=fields["q-key-time"],
    )


def expected_signature(
    parsed: ParsedAuthorization,
    *,
    secret_key: str,
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
) -> str:
    """Recompute the signature a verifier expects, from exactly the names the header lists.

    `params` and `headers` hold what the request carried, keyed by encoded lower-case name (as
    `canonical_pairs` spells names); a listed name the request lacks raises `KeyError`, which a
    verifier reports as a mismatch. The listed order is used as given: it is what the client
    says it signed.
    """
    header_pairs = [(name, encode(headers[name])) for name in parsed.header_list]
    param_pairs = [(name, encode(params[name])) for name in parsed.param_list]
    to_sign = string_to_sign(
        parsed.sign_time_text, http_string(method, path, param_pairs, header_pairs)
    )
    return signature(sign_key(secret_key, parsed.key_time_text), to_sign)
