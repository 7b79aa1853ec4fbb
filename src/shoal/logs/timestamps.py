"""Log timestamps as integer Unix nanoseconds, and the text forms Docker uses for them.

Python's datetime stops at microseconds; Docker's timestamps have nanoseconds, and a line's
timestamp must come out exactly as it went in, so they are handled as integers here."""

import calendar
import re
import time

NS = 1_000_000_000

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)
_GO_INT = re.compile(r"[+-]?\d+")


def parse_rfc3339(text: str) -> int:
    """Unix nanoseconds of an RFC 3339 timestamp with up to nine fractional digits (the
    ``time`` of a json-file log line)."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ValueError(f"invalid timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        raise ValueError(f"invalid timestamp: {text!r}")
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    zone = m[8]
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * NS + int((m[7] or "").ljust(9, "0"))


def format_rfc3339_nano_fixed(ns: int) -> str:
    """Docker's RFC3339NanoFixed in UTC: always nine fractional digits
    ("2026-11-22T10:44:47.828477198Z"), as ``logs --timestamps`` prints."""
    seconds, frac = divmod(ns, NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def _go_parse_int(text: str) -> int:
    if _GO_INT.fullmatch(text) is None:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def parse_unix_timestamp(value: str) -> int:
    """Unix nanoseconds of the API's ``since`` parameter: "SECONDS" or "SECONDS.FRACTION",
    read as Docker's ParseTimestamps reads it (clients turn "10m" or a date into this form
    before sending). Raises ValueError with Go's wording."""
    seconds_text, dot, frac_text = value.partition(".")
    seconds = _go_parse_int(seconds_text)
    if not dot:
        return seconds * NS
    frac = _go_parse_int(frac_text)
    # The fraction is read as an integer and scaled by its number of digits, as Docker does.
    return seconds * NS + int(frac * 10 ** (9 - len(frac_text)))
