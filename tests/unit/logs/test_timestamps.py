import calendar
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.logs.timestamps import (
    NS,
    format_rfc3339_nano_fixed,
    parse_rfc3339,
    parse_unix_timestamp,
)


def test_parse_keeps_nanoseconds():
    ns = parse_rfc3339("2026-11-22T10:44:47.828477198Z")
    assert ns % NS == 828477198
    assert ns // NS == calendar.timegm((2026, 11, 22, 10, 44, 47, 0, 0, 0))


@pytest.mark.parametrize(
    ("text", "frac"),
    [
        ("2026-11-22T10:44:47Z", 0),
        ("2026-11-22T10:44:47.5Z", 500_000_000),
        ("2026-11-22T10:44:47.000001Z", 1000),
        ("2026-11-22T10:44:47.123456789Z", 123456789),
    ],
)
def test_parse_fraction_lengths(text, frac):
    assert parse_rfc3339(text) % NS == frac


def test_parse_offsets():
    utc = parse_rfc3339("2026-11-22T10:44:47.1Z")
    assert parse_rfc3339("2026-11-22T12:44:47.1+02:00") == utc
    assert parse_rfc3339("2026-11-22T09:14:47.1-01:30") == utc


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2026-11-22 10:44:47Z", "2026-13-01T00:00:00Z", "2026-11-22T10:44"]
)
def test_parse_rejects(text):
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_format_is_fixed_width_utc():
    assert format_rfc3339_nano_fixed(parse_rfc3339("2026-11-22T10:44:47.5Z")) == (
        "2026-11-22T10:44:47.500000000Z"
    )
    assert format_rfc3339_nano_fixed(0) == "1970-01-01T00:00:00.000000000Z"


@given(st.integers(min_value=0, max_value=(2**33) * NS))
def test_format_then_parse_is_identity(ns):
    assert parse_rfc3339(format_rfc3339_nano_fixed(ns)) == ns


@pytest.mark.parametrize(
    ("value", "ns"),
    [
        ("1700000000", 1700000000 * NS),
        ("1700000000.5", 1700000000 * NS + 500_000_000),
        ("1700000000.000000001", 1700000000 * NS + 1),
        ("1700000000.123456789", 1700000000 * NS + 123456789),
        ("0", 0),
        ("-1", -NS),
    ],
)
def test_unix_timestamp(value, ns):
    assert parse_unix_timestamp(value) == ns


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10m", 'strconv.ParseInt: parsing "10m": invalid syntax'),
        (
            "2026-11-22T10:44:47Z",
            'strconv.ParseInt: parsing "2026-11-22T10:44:47Z": invalid syntax',
        ),
        ("1.x", 'strconv.ParseInt: parsing "x": invalid syntax'),
        (" 1", 'strconv.ParseInt: parsing " 1": invalid syntax'),
    ],
)
def test_unix_timestamp_errors_in_go_words(value, message):
    with pytest.raises(ValueError) as err:
        parse_unix_timestamp(value)
    assert str(err.value) == message


def test_now_round_trips_through_the_since_form():
    now = time.time_ns()
    text = f"{now // NS}.{now % NS:09d}"
    assert parse_unix_timestamp(text) == now
