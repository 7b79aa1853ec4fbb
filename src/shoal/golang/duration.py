"""Go's time.Duration: parsing ("1m30s") and printing ("1m30s", "10s", "1.5µs") with Go's
error texts, as Docker's flags and its pretty output use them."""

from __future__ import annotations

import re

from shoal.golang.strconv import GoError, quote

# --- time.Duration ------------------------------------------------------------------------

NANOSECOND = 1
MICROSECOND = 1000
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "µs": MICROSECOND,
    "μs": MICROSECOND,
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}


def parse_duration(s: str) -> int:
    """time.ParseDuration -> int nanoseconds, with Go's error texts."""
    orig = s
    err = GoError(f"time: invalid duration {quote(orig)}")
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise err
    total = 0.0
    total_int = 0
    exact = True
    while s:
        m = re.match(r"(\d*)(\.\d*)?", s)
        assert m is not None
        whole, frac = m.group(1), m.group(2) or ""
        if not whole and frac in ("", "."):
            raise err
        s = s[m.end() :]
        u = re.match(r"[^\d.]*", s)
        assert u is not None
        unit = u.group(0)
        s = s[u.end() :]
        if not unit:
            raise GoError(f"time: missing unit in duration {quote(orig)}")
        if unit not in _UNITS:
            raise GoError(f"time: unknown unit {quote(unit)} in duration {quote(orig)}")
        mult = _UNITS[unit]
        v = int(whole or "0") * mult
        if frac and len(frac) > 1:
            f = int(frac[1:]) * mult
            v += f // (10 ** (len(frac) - 1))
            if f % (10 ** (len(frac) - 1)):
                exact = exact and True
        total_int += v
        if total_int > (1 << 63) - 1:
            raise err
    del total, exact
    return -total_int if neg else total_int


def format_duration(d: int) -> str:
    """time.Duration.String(): 1h2m3.5s, 10s, 500ms, 0s."""
    if d == 0:
        return "0s"
    neg = d < 0
    u = -d if neg else d
    if u < SECOND:
        if u < MICROSECOND:
            out = f"{u}ns"
        elif u < MILLISECOND:
            out = _frac(u, 3) + "µs"
        else:
            out = _frac(u, 6) + "ms"
    else:
        secs = _frac(u % MINUTE, 9) + "s"
        u //= MINUTE
        if u == 0:
            out = secs
        else:
            mins = u % 60
            hours = u // 60
            out = f"{mins}m{secs}"
            if hours:
                out = f"{hours}h{out}"
    return "-" + out if neg else out


def _frac(v: int, prec: int) -> str:
    whole, frac = divmod(v, 10**prec)
    if frac == 0:
        return str(whole)
    fs = f"{frac:0{prec}d}".rstrip("0")
    return f"{whole}.{fs}"
