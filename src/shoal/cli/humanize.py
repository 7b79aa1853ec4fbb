"""The small wordings Docker's CLI uses everywhere: relative times (go-units HumanDuration),
sizes (go-units BytesSize/RAMInBytes), PrettyPrint of states, short IDs."""

import re

from shoal.golang import GoError, GoTime

NANOS = 1_000_000_000


def human_duration(ns: int) -> str:
    """go-units HumanDuration: "Less than a second", "About a minute", "3 hours"..."""
    seconds = int(ns / NANOS)
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = int(ns / NANOS / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(ns / NANOS / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(ns / NANOS / 3600) // 24 // 365} years"


def ago(timestamp: str, now_ns: int) -> str:
    """ "<duration> ago" of an API timestamp, lower-cased as task states show it."""
    t = GoTime.parse(timestamp)
    if t is None:
        return ""
    return human_duration(now_ns - t.ns).lower() + " ago"


_BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def _go_g4(value: float) -> str:
    # Go's %.4g and Python's agree except for the exponent, which Go writes with two digits.
    text = f"{value:.4g}"
    return re.sub(r"e([+-])(\d)$", r"e\g<1>0\2", text)


def bytes_size(size: float) -> str:
    """go-units BytesSize: 23.54GiB."""
    i = 0
    while size >= 1024 and i < len(_BINARY) - 1:
        size /= 1024
        i += 1
    return _go_g4(size) + _BINARY[i]


_RAM = re.compile(r"^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_RAM_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: "512m" -> 536870912; "invalid size: 'lots'" otherwise."""
    m = _RAM.match(text)
    if not m:
        raise GoError(f"invalid size: '{text}'")
    size = float(m.group(1))
    unit = (m.group(3) or "").lower()
    return int(size * _RAM_UNITS.get(unit, 1))


def pretty_print(value: object) -> str:
    """formatter.PrettyPrint: first letter upper case, the rest lower case."""
    text = str(value)
    return text[:1].upper() + text[1:].lower()


def truncate_id(ident: str) -> str:
    if ":" in ident:
        ident = ident.split(":", 1)[1]
    return ident[:12]


def ellipsis(text: str, width: int) -> str:
    """formatter.Ellipsis: cut to ``width`` columns, the last one an ellipsis."""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…"


def strip_digest(image: str) -> str:
    """An image reference without its @digest, in its familiar form."""
    image = image.split("@", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/"):
        if image.startswith(prefix):
            return image[len(prefix) :]
    return image


def natural_key(text: str) -> list:
    """sortorder.NaturalLess: digits compare as numbers ("node2" < "node10")."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", text)
        if part
    ]
