"""Sizes and CPU counts in a compose file, read with Docker's rules and words."""

import re
from fractions import Fraction

from shoal.compose.errors import ComposeError

_RAM = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes (binary units): "50M" is 52428800."""
    m = _RAM.match(text)
    if not m:
        raise ComposeError(f"invalid size: '{text}'")
    return int(float(m.group(1)) * _UNITS.get((m.group(2) or "").lower(), 1))


def nano_cpus(text: str) -> int:
    """opts.ParseCPUs: a decimal number of CPUs as billionths."""
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise ComposeError(f"failed to parse {text} as a rational number") from None
    nano = value * 1_000_000_000
    if nano.denominator != 1:
        raise ComposeError("value is too precise")
    return int(nano)
