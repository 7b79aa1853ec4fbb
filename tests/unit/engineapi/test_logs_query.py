"""The logs endpoints' query, read as Docker's daemon reads it."""

import pytest

from shoal.engineapi.logs import media_type, read_query, subscription_options
from shoal.errors import ShoalError
from shoal.logs.timestamps import NS


def test_streams_are_required():
    with pytest.raises(ShoalError) as err:
        read_query({"follow": "1"})
    assert err.value.status == 500
    assert err.value.message == "Bad parameters: you must choose at least one stream"
    with pytest.raises(ShoalError):
        read_query({"stdout": "0", "stderr": "false"})


def test_flags_as_docker_reads_booleans():
    q = read_query({"stdout": "1", "stderr": "no", "follow": "true", "timestamps": "TRUE"})
    assert (q.stdout, q.stderr, q.follow, q.timestamps, q.details) == (
        True,
        False,
        True,
        True,
        False,
    )


@pytest.mark.parametrize(("tail", "expected"), [("", None), ("all", None), ("0", 0), ("12", 12)])
def test_tail(tail, expected):
    opts = subscription_options(read_query({"stdout": "1", "tail": tail}))
    assert opts.tail == expected
    assert opts.stdout and not opts.stderr


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("x", 'tail value must be a positive integer or "all"'),
        ("1.5", 'tail value must be a positive integer or "all"'),
        ("ALL", 'tail value must be a positive integer or "all"'),
        ("-1", "negative tail values not supported"),
    ],
)
def test_bad_tail(tail, message):
    with pytest.raises(ShoalError) as err:
        subscription_options(read_query({"stdout": "1", "tail": tail}))
    assert err.value.message == message


def test_since():
    opts = subscription_options(read_query({"stderr": "1", "since": "1700000000.25"}))
    assert opts.since_ns == 1700000000 * NS + 250_000_000
    assert subscription_options(read_query({"stderr": "1"})).since_ns is None
    with pytest.raises(ShoalError) as err:
        subscription_options(read_query({"stderr": "1", "since": "2026-11-22"}))
    assert err.value.message == (
        'could not parse since timestamp: strconv.ParseInt: parsing "2026-11-22": invalid syntax'
    )


def test_media_type_by_version_and_tty():
    assert media_type("v1.42", False) == "application/vnd.docker.multiplexed-stream"
    assert media_type(None, False) == "application/vnd.docker.multiplexed-stream"
    assert media_type("v1.41", False) == "application/vnd.docker.raw-stream"
    assert media_type("v1.47", True) == "application/vnd.docker.raw-stream"
