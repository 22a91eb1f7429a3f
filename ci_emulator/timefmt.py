"""CI's timestamp form, `2022-06-30T18:45:14+0800`: second precision, offset without a colon.

CI reports every time in China Standard Time (+0800) whatever the bucket's region, so the
emulator does too; clients that assume UTC or a colon in the offset break here as they would on
CI.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

CI_TIMEZONE = timezone(timedelta(hours=8))
CI_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


def format_ci_time(unix_seconds: float) -> str:
    return datetime.fromtimestamp(int(unix_seconds), tz=CI_TIMEZONE).strftime(CI_TIME_FORMAT)


def parse_ci_time(text: str) -> float:
    """Unix seconds of a `%Y-%m-%dT%H:%M:%S%z` string; `ValueError` if it is not that form."""
    parsed = datetime.strptime(text, CI_TIME_FORMAT)
    if parsed.tzinfo is None:  # pragma: no cover - %z always yields an aware datetime
        raise ValueError("a CI time needs an offset")
    return parsed.timestamp()
