import datetime as dt
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.ca.renewal import check_node_cert_expiry, renewal_time
from shoal.errors import InvalidArgument

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=0, max_value=2**32))
def test_renewal_falls_between_half_and_four_fifths_of_the_life(seconds: int, seed: int) -> None:
    expires = T0 + dt.timedelta(seconds=seconds)
    at = renewal_time(T0, expires, random.Random(seed))
    assert T0 + (expires - T0) * 0.5 <= at <= T0 + (expires - T0) * 0.8


def test_nodes_that_joined_together_renew_at_different_times() -> None:
    rng = random.Random(7)
    times = {renewal_time(T0, T0 + dt.timedelta(days=90), rng) for _ in range(20)}
    assert len(times) == 20


def test_expiry_below_an_hour_is_refused_in_swarms_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOAL_UNSAFE_MIN_CERT_EXPIRY", raising=False)
    check_node_cert_expiry(3600 * 10**9)
    with pytest.raises(InvalidArgument) as err:
        check_node_cert_expiry(3599 * 10**9)
    assert str(err.value.message) == (
        "rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s"
    )
