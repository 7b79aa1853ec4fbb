"""Go's strconv as the Docker CLI shows it, exactly: %q quoting, integer, boolean and float
parsing with Go's error texts ("strconv.ParseUint: parsing \"abc\": invalid syntax"), and
floats printed as Go prints them."""

from __future__ import annotations

import re

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
