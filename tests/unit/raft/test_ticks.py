from hypothesis import given
from hypothesis import strategies as st

from shoal.raft.ticks import MAX_TICKS_PER_WAKE, TickPacer


def test_on_time_wake_ups_tick_once_each():
    pacer = TickPacer(0.1, now=0.0)
    assert [pacer.due(0.1 * i) for i in range(1, 6)] == [1, 1, 1, 1, 1]


def test_late_wake_ups_catch_up_with_the_clock():
    pacer = TickPacer(0.1, now=0.0)
    # Each sleep of 0.1 s ends 0.15 s late: 25 ticks' worth of time in 10 wake-ups.
    t, ticks = 0.0, 0
    for _ in range(10):
        t += 0.25
        ticks += pacer.due(t)
    assert ticks == 25


def test_a_long_hold_counts_only_a_few_ticks():
    pacer = TickPacer(0.1, now=0.0)
    assert pacer.due(2.0) == MAX_TICKS_PER_WAKE  # held 1.9 s: not 20 ticks at once
    assert pacer.due(2.1) == 1  # and the time beyond is dropped, not owed


@given(st.lists(st.floats(min_value=0.1, max_value=0.3), min_size=1, max_size=200))
def test_ticks_never_run_ahead_of_the_clock_and_lag_at_most_one(sleeps):
    """With wake-ups at most 0.2 s late (within the cap), the ticks follow the clock."""
    pacer = TickPacer(0.1, now=0.0)
    t, ticks = 0.0, 0
    for s in sleeps:
        t += s
        ticks += pacer.due(t)
        assert ticks <= t / 0.1 + 1e-6
        assert ticks >= int(t / 0.1 + 1e-9) - 1
