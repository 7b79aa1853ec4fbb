"""Times in list filters (``until``), read as Docker's daemon reads them."""

import datetime as dt

from shoal.errors import InvalidArgument
from shoal.logs.timestamps import NS, get_timestamp, parse_unix_timestamp


def parse_until(value: str, now_ns: int | None = None) -> dt.datetime:
    """``until=24h``, a date or Unix seconds, as a time (UTC)."""
    try:
        ns = parse_unix_timestamp(get_timestamp(value, now_ns))
    except ValueError as err:
        raise InvalidArgument(str(err)) from None
    seconds, frac = divmod(ns, NS)
    return dt.datetime.fromtimestamp(seconds, dt.UTC) + dt.timedelta(microseconds=frac // 1000)
