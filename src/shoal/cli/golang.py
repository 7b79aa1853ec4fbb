"""Go standard-library behaviours the Docker CLI shows its users, reproduced exactly:
strconv parsing (and its error texts), %q quoting, time.Duration parsing and printing,
RFC 3339 timestamps and time.Time's String().  Docker's messages embed these verbatim
("strconv.ParseUint: parsing \"abc\": invalid syntax", "Delay: 10s", "+0000 utc")."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# --- %q ---------------------------------------------------------------------------------


def quote(s: str) -> str:
    """Go's strconv.Quote (what fmt's %q prints for a string)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\v":
            out.append("\\v")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif not ch.isprintable() and o > 0x7F:
            out.append(f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def quote_rune(c: str) -> str:
    """%q of a byte/rune: 'x'."""
    if c == "'":
        return "'\\''"
    return "'" + quote(c)[1:-1].replace('\\"', '"') + "'"


# --- strconv ------------------------------------------------------------------------------


class GoError(ValueError):
    """An error whose str() is exactly the Go error text."""


def _syntax(fn: str, s: str) -> GoError:
    return GoError(f"strconv.{fn}: parsing {quote(s)}: invalid syntax")


def _range(fn: str, s: str) -> GoError:
    return GoError(f"strconv.{fn}: parsing {quote(s)}: value out of range")


def _parse_digits(s: str, base: int, fn: str, orig: str) -> int:
    if base == 0:
        base = 10
        if s.startswith(("0x", "0X")):
            base, s = 16, s[2:]
        elif s.startswith(("0b", "0B")):
            base, s = 2, s[2:]
        elif s.startswith(("0o", "0O")):
            base, s = 8, s[2:]
        elif len(s) > 1 and s.startswith("0"):
            base, s = 8, s[1:]
        # underscores are allowed only with a base prefix (base argument 0)
        if "_" in s:
            if not re.fullmatch(r"_?[0-9a-zA-Z]+(_[0-9a-zA-Z]+)*", s):
                raise _syntax(fn, orig)
            s = s.replace("_", "")
    if not s:
        raise _syntax(fn, orig)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"[:base]
    if any(c.lower() not in digits for c in s):
        raise _syntax(fn, orig)
    return int(s, base)


def parse_uint(s: str, base: int = 10, bits: int = 64) -> int:
    if not s:
        raise _syntax("ParseUint", s)
    v = _parse_digits(s, base, "ParseUint", s)
    if v >= 1 << bits:
        raise _range("ParseUint", s)
    return v


def parse_int(s: str, base: int = 10, bits: int = 64) -> int:
    if not s:
        raise _syntax("ParseInt", s)
    neg = s[0] == "-"
    body = s[1:] if s[0] in "+-" else s
    try:
        v = _parse_digits(body, base, "ParseInt", s)
    except GoError:
        raise _syntax("ParseInt", s) from None
    if neg:
        v = -v
    if v >= 1 << (bits - 1) or v < -(1 << (bits - 1)):
        raise _range("ParseInt", s)
    return v


def parse_bool(s: str) -> bool:
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise _syntax("ParseBool", s)


_FLOAT = re.compile(
    r"[+-]?(\d+(_\d+)*\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)", re.I
)


def parse_float(s: str) -> float:
    if not _FLOAT.fullmatch(s):
        raise _syntax("ParseFloat", s)
    return float(s.replace("_", ""))


def format_float32(f: float) -> str:
    """strconv.FormatFloat(float64(float32), 'g', -1, 32) / %v of a float32."""
    import struct

    f32 = struct.unpack("f", struct.pack("f", f))[0]
    if f32 == int(f32) and abs(f32) < 1e21:
        return str(int(f32))
    # shortest repr that round-trips through float32
    for prec in range(1, 10):
        txt = f"{f32:.{prec}g}"
        if struct.unpack("f", struct.pack("f", float(txt)))[0] == f32:
            return _go_exp(txt)
    return _go_exp(repr(f32))


def format_float64(f: float) -> str:
    """%v of a float64 (strconv 'g' shortest)."""
    if f == int(f) and abs(f) < 1e21:
        return str(int(f))
    return _go_exp(repr(f))


def _go_exp(txt: str) -> str:
    # Go writes exponents with at least two digits: 1e-07 -> 1e-07, 1e+21
    m = re.fullmatch(r"(-?[\d.]+)e([+-])(\d+)", txt)
    if m:
        return f"{m.group(1)}e{m.group(2)}{int(m.group(3)):02d}"
    return txt


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
