"""Timestamps as integer Unix nanoseconds, and the text forms Docker uses for them (log lines,
``since`` and ``until``).

Python's datetime stops at microseconds; Docker's timestamps have nanoseconds, and a line's
timestamp must come out exactly as it went in, so they are handled as integers here."""

import calendar
import datetime
import re
import time

from shoal.golang import parse_duration

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


_ZONE = r"(?P<zone>Z|[+-]\d{2}:\d{2})"
_DATE = r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"


def _layout(value: str, in_location: bool) -> tuple[str, str]:
    """The regular expression for the layout GetTimestamp picks for ``value``, and that
    layout's Go spelling (for error messages)."""
    zone = "" if in_location else _ZONE
    if "." in value:
        rx = _DATE + r"T(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})\.(?P<f>\d+)" + zone
        return rx, "2006-01-02T15:04:05.999999999" + ("" if in_location else "Z07:00")
    if "T" in value:
        colons = value.count(":")
        if not in_location and not any(c in value for c in "zZ") and colons > 0:
            colons -= 1  # the zone offset's own colon
        if colons == 0:
            rx, go = _DATE + r"T(?P<h>\d{1,2})", "2006-01-02T15"
        elif colons == 1:
            rx, go = _DATE + r"T(?P<h>\d{1,2}):(?P<mi>\d{2})", "2006-01-02T15:04"
        else:
            rx = _DATE + r"T(?P<h>\d{1,2}):(?P<mi>\d{2}):(?P<s>\d{2})"
            go = "2006-01-02T15:04:05"
        return rx + zone, go + ("" if in_location else "Z07:00")
    return _DATE + zone, "2006-01-02" + ("" if in_location else "Z07:00")


def _local_offset(now_ns: int) -> int:
    return time.localtime(now_ns // NS).tm_gmtoff


def get_timestamp(value: str, now_ns: int | None = None, utc_offset: int | None = None) -> str:
    """Docker's GetTimestamp: Unix seconds (as text) for what a user typed as a time, in a
    ``since`` or ``until``: "10m" (that long before now),
    "2013-01-02T13:23:37Z" or a date (local time without a zone), or Unix seconds as they
    are. Raises ValueError with Docker's wording for anything else."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    if value != "0":
        try:
            return str((now_ns - parse_duration(value)) // NS)
        except ValueError:
            pass
    in_location = not any(c in value for c in "zZ+") and value.count("-") != 3
    rx, layout = _layout(value, in_location)
    m = re.fullmatch(rx, value)
    if m is None:
        if "-" in value:
            raise ValueError(f'parsing time "{value}" as "{layout}": cannot parse "{value}"')
        try:
            parse_unix_timestamp(value)
        except ValueError:
            raise ValueError(f'failed to parse value as time or duration: "{value}"') from None
        return value  # already Unix seconds
    fields = m.groupdict()
    year, month, day = int(fields["y"]), int(fields["mo"]), int(fields["d"])
    hour, minute, second = (int(fields.get(k) or 0) for k in ("h", "mi", "s"))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 60):
        raise ValueError(f'parsing time "{value}": value out of range')
    try:
        datetime.date(year, month, day)
    except ValueError:
        raise ValueError(f'parsing time "{value}": day out of range') from None
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    zone = fields.get("zone")
    if zone is None:
        seconds -= _local_offset(now_ns) if utc_offset is None else utc_offset
    elif zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    frac = int((fields.get("f") or "")[:9].ljust(9, "0"))
    return f"{seconds}.{frac:09d}"
