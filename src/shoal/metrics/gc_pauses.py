"""How long the cyclic garbage collector held the process: each collection stops everything,
the event loop included, for as long as it walks its generations (see store/gc_tuning.py).
Recorded per generation, with what each freed; a long one is logged, as a long loop stall
is (metrics/loop_lag.py), since the stall trace cannot show a collection (it is no frame).
"""

import gc
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Histogram

from shoal.metrics.instruments import INSTRUMENTS

log = logging.getLogger(__name__)

LOG_OVER = 0.25  # seconds: a collection that long is logged

GC_PAUSE = Histogram(
    "shoal_gc_pause_seconds",
    "How long each collection of the cyclic garbage collector held the process, by the "
    "oldest generation it walked (0 young, 1 middle, 2 full).",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
    registry=INSTRUMENTS,
)
GC_COLLECTED = Counter(
    "shoal_gc_collected_objects_total",
    "Objects the cyclic garbage collector freed (garbage in reference cycles), by generation.",
    ["generation"],
    registry=INSTRUMENTS,
)


class PauseRecorder:
    """A ``gc.callbacks`` entry: times each collection from its start to its stop."""

    def __init__(self, now: Callable[[], float] = time.perf_counter) -> None:
        self._now = now
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self._now()
            return
        pause = self._now() - self._started
        generation = str(info.get("generation", ""))
        GC_PAUSE.labels(generation).observe(pause)
        collected = info.get("collected", 0)
        if collected:
            GC_COLLECTED.labels(generation).inc(collected)
        if pause >= LOG_OVER:
            log.info(
                "garbage collection of generation %s held the process %.0f ms (%d freed)",
                generation,
                pause * 1000,
                collected,
            )


def record_gc_pauses() -> Callable[[], None]:
    """Start recording every collection of this process; returns what stops it."""
    recorder = PauseRecorder()
    gc.callbacks.append(recorder)

    def stop() -> None:
        if recorder in gc.callbacks:
            gc.callbacks.remove(recorder)

    return stop
