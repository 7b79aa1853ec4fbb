"""Go's standard library as Docker's users see it through the CLI and the daemon's messages,
reproduced exactly: strconv (quoting, parsing and its error texts), time.Duration, time.Time,
text/template (``--format``) and text/tabwriter (tables). The lowest layer: it imports nothing
of shoal's, and anything that must print or parse as Docker does may use it."""

from shoal.golang.duration import SECOND, format_duration, parse_duration
from shoal.golang.gotime import GoTime, since
from shoal.golang.strconv import (
    GoError,
    format_float32,
    format_float64,
    parse_bool,
    parse_float,
    parse_int,
    parse_uint,
    quote,
    quote_rune,
)

__all__ = [
    "SECOND",
    "GoError",
    "GoTime",
    "format_duration",
    "format_float32",
    "format_float64",
    "parse_bool",
    "parse_duration",
    "parse_float",
    "parse_int",
    "parse_uint",
    "quote",
    "quote_rune",
    "since",
]
