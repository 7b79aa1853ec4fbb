"""The collector's pauses: recorded by generation, with what each freed; a long one logged."""

import gc
import logging

import pytest

from shoal.metrics.gc_pauses import PauseRecorder, record_gc_pauses
from shoal.metrics.instruments import INSTRUMENTS


def _sample(name: str, generation: str) -> float:
    value = INSTRUMENTS.get_sample_value(name, {"generation": generation})
    return value or 0.0


def test_a_pause_is_timed_from_start_to_stop(caplog: pytest.LogCaptureFixture) -> None:
    times = iter([10.0, 10.5])
    recorder = PauseRecorder(now=lambda: next(times))
    count = _sample("shoal_gc_pause_seconds_count", "2")
    total = _sample("shoal_gc_pause_seconds_sum", "2")
    freed = _sample("shoal_gc_collected_objects_total", "2")
    with caplog.at_level(logging.INFO, logger="shoal.metrics.gc_pauses"):
        recorder("start", {"generation": 2, "collected": 0, "uncollectable": 0})
        recorder("stop", {"generation": 2, "collected": 12, "uncollectable": 0})
    assert _sample("shoal_gc_pause_seconds_count", "2") == count + 1
    assert _sample("shoal_gc_pause_seconds_sum", "2") == pytest.approx(total + 0.5)
    assert _sample("shoal_gc_collected_objects_total", "2") == freed + 12
    assert "generation 2 held the process 500 ms (12 freed)" in caplog.text


def test_a_short_pause_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    times = iter([1.0, 1.01])
    recorder = PauseRecorder(now=lambda: next(times))
    with caplog.at_level(logging.INFO, logger="shoal.metrics.gc_pauses"):
        recorder("start", {"generation": 0, "collected": 0, "uncollectable": 0})
        recorder("stop", {"generation": 0, "collected": 0, "uncollectable": 0})
    assert caplog.text == ""


def test_recording_follows_the_real_collector_until_stopped() -> None:
    stop = record_gc_pauses()
    try:
        before = _sample("shoal_gc_pause_seconds_count", "2")
        freed = _sample("shoal_gc_collected_objects_total", "2")
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        gc.collect()
        assert _sample("shoal_gc_pause_seconds_count", "2") == before + 1
        assert _sample("shoal_gc_collected_objects_total", "2") >= freed + 1
    finally:
        stop()
    before = _sample("shoal_gc_pause_seconds_count", "2")
    gc.collect()
    assert _sample("shoal_gc_pause_seconds_count", "2") == before
