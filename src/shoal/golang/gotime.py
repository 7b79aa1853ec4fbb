"""Go's time.Time as Docker's clients show it: RFC 3339 timestamps with nanoseconds, and
time.Time's String() ("2026-11-22 10:11:20.998184724 +0000 UTC")."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from shoal.golang.duration import SECOND

# --- time.Time ----------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


class GoTime:
    """A timestamp with nanosecond precision (Docker's JSON times carry nanoseconds)."""

    __slots__ = ("ns", "offset_min")

    def __init__(self, ns: int, offset_min: int = 0) -> None:
        self.ns = ns  # nanoseconds since the epoch, UTC
        self.offset_min = offset_min

    @classmethod
    def parse(cls, s: str) -> GoTime | None:
        m = _RFC3339.fullmatch(s or "")
        if not m:
            return None
        y, mo, d, h, mi, se = (int(m.group(i)) for i in range(1, 7))
        frac = (m.group(7) or ".")[1:]
        ns_frac = int((frac + "000000000")[:9]) if frac else 0
        tz = m.group(8)
        off = 0
        if tz not in ("Z", "z"):
            sign = 1 if tz[0] == "+" else -1
            off = sign * (int(tz[1:3]) * 60 + int(tz[4:6]))
        base = datetime(y, mo, d, h, mi, se, tzinfo=UTC).timestamp()
        ns = (int(base) - off * 60) * SECOND + ns_frac
        return cls(ns, off)

    @classmethod
    def from_seconds(cls, t: float) -> GoTime:
        return cls(round(t * SECOND))

    def is_zero(self) -> bool:
        # Go's zero time is 0001-01-01T00:00:00Z
        return self.ns <= -62135596800 * SECOND

    def string(self) -> str:
        """time.Time.String() for a UTC time: 2026-11-22 10:11:20.998184724 +0000 UTC."""
        secs, nanos = divmod(self.ns + self.offset_min * 60 * SECOND, SECOND)
        dt = datetime.fromtimestamp(secs, UTC)
        frac = f".{nanos:09d}".rstrip("0") if nanos else ""
        sign = "+" if self.offset_min >= 0 else "-"
        off = abs(self.offset_min)
        zone = "UTC" if self.offset_min == 0 else ""
        s = dt.strftime("%Y-%m-%d %H:%M:%S") + frac + f" {sign}{off // 60:02d}{off % 60:02d}"
        return s + (f" {zone}" if zone else f" {sign}{off // 60:02d}{off % 60:02d}")

    def rfc3339nano(self) -> str:
        secs, nanos = divmod(self.ns, SECOND)
        dt = datetime.fromtimestamp(secs, UTC)
        frac = f".{nanos:09d}".rstrip("0") if nanos else ""
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def since(t: GoTime, now_ns: int) -> int:
    """time.Since(t) in nanoseconds given the current time."""
    return now_ns - t.ns
