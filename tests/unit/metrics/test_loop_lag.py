"""The event-loop lag probe's window: what it reports and when it stays quiet."""

import asyncio
import time

import pytest

from shoal.metrics.loop_lag import EVENT_LOOP_LAG, LagWindow, probe_loop_lag, report_line


def test_empty_window_reports_zeros() -> None:
    assert LagWindow().summary() == (0.0, 0.0, 0)


def test_summary_is_max_p99_and_count() -> None:
    window = LagWindow()
    for ms in range(1, 201):  # 1..200 ms
        window.add(ms / 1000)
    worst, p99, count = window.summary()
    assert worst == pytest.approx(0.2)
    assert p99 == pytest.approx(0.198)  # the 198th of 200 sorted samples
    assert count == 200


def test_an_early_wake_counts_as_no_lag() -> None:
    window = LagWindow()
    window.add(-0.001)
    assert window.summary() == (0.0, 0.0, 1)


def test_a_quiet_window_is_not_logged() -> None:
    window = LagWindow()
    window.add(0.099)
    assert report_line(window, 10.0) is None


def test_a_window_that_lagged_is_logged_with_its_figures() -> None:
    window = LagWindow()
    for lag in (0.001, 0.002, 0.35):
        window.add(lag)
    assert report_line(window, 10.0) == (
        "event loop lag over the last 10 s: max 350 ms, p99 350 ms (3 samples)"
    )
    window.reset()
    assert window.summary() == (0.0, 0.0, 0)


def _late_wakeups() -> float:
    """How many probe wake-ups so far came more than 50 ms late."""
    samples = EVENT_LOOP_LAG.collect()[0].samples
    count = next(s.value for s in samples if s.name.endswith("_count"))
    within = next(
        s.value for s in samples if s.name.endswith("_bucket") and s.labels["le"] == "0.05"
    )
    return count - within


async def test_the_probe_records_a_loop_held_by_synchronous_work() -> None:
    before = _late_wakeups()
    probe = asyncio.create_task(probe_loop_lag(interval=0.01))
    await asyncio.sleep(0.02)
    time.sleep(0.1)  # noqa: ASYNC251 - holding the loop, as a long synchronous stretch would
    await asyncio.sleep(0.03)
    probe.cancel()
    assert _late_wakeups() - before >= 1
