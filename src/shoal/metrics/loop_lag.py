"""Event-loop lag: how late a task that asked to sleep a short while wakes up. Everything a
node does shares one asyncio loop, raft's ticks and heartbeats included, so a synchronous
stretch of work (applying a large batch, a scheduler pass, building session messages) delays
all of it by its length; this probe makes such stretches visible (issue 15: a loaded leader
missed its heartbeats and lost leadership).

The probe measures the process' real monotonic time, not the injectable clock: it measures
the work the process does, also under a test's fake clock (as ``stopwatch`` does).
"""

import asyncio
import logging
import math
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

from prometheus_client import Histogram

from shoal.metrics.instruments import INSTRUMENTS

log = logging.getLogger(__name__)

PROBE_INTERVAL = 0.05  # seconds the probe asks to sleep
REPORT_EVERY = 10.0  # seconds between log lines (only when the loop lagged noticeably)
REPORT_OVER = 0.1  # a window whose worst lag reaches this is logged
# SHOAL_LOOP_STALL_TRACE=SECONDS: a watchdog thread logs the event loop thread's stack when
# the loop has not run the probe for that long (finds what holds the loop; off by default).
STALL_TRACE_ENV = "SHOAL_LOOP_STALL_TRACE"

EVENT_LOOP_LAG = Histogram(
    "shoal_event_loop_lag_seconds",
    "How late a task that slept 50 ms woke up: the longest the event loop was held by "
    "other work at that moment.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
    registry=INSTRUMENTS,
)


@dataclass
class LagWindow:
    """The lags measured since the last report."""

    samples: list[float] = field(default_factory=list)

    def add(self, lag: float) -> None:
        self.samples.append(max(0.0, lag))

    def summary(self) -> tuple[float, float, int]:
        """(max, p99, number of samples) of the window, in seconds; zeros when empty."""
        if not self.samples:
            return 0.0, 0.0, 0
        ordered = sorted(self.samples)
        p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
        return ordered[-1], p99, len(ordered)

    def reset(self) -> None:
        self.samples.clear()


def report_line(window: LagWindow, seconds: float) -> str | None:
    """The log line for a window (None when its worst lag stays under ``REPORT_OVER``)."""
    worst, p99, count = window.summary()
    if worst < REPORT_OVER:
        return None
    return (
        f"event loop lag over the last {seconds:.0f} s: max {worst * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms ({count} samples)"
    )


async def probe_loop_lag(
    interval: float = PROBE_INTERVAL, report_every: float = REPORT_EVERY
) -> None:
    """Run until cancelled: sleep ``interval``, record how late the wake-up was."""
    window = LagWindow()
    reported = time.monotonic()
    watchdog = _start_watchdog(interval)
    while True:
        asked = time.monotonic()
        await asyncio.sleep(interval)
        woke = time.monotonic()
        if watchdog is not None:
            watchdog.alive = woke
        lag = woke - asked - interval
        window.add(lag)
        EVENT_LOOP_LAG.observe(max(0.0, lag))
        if woke - reported >= report_every:
            line = report_line(window, woke - reported)
            if line is not None:
                log.info("%s", line)
            window.reset()
            reported = woke


class _Watchdog(threading.Thread):
    """Logs the loop thread's stack each time the loop has been held ``stall`` seconds."""

    def __init__(self, loop_thread: int, stall: float, interval: float) -> None:
        super().__init__(name="loop-stall-trace", daemon=True)
        self.loop_thread = loop_thread
        self.stall = stall
        self.interval = interval
        self.alive = time.monotonic()

    def run(self) -> None:
        traced = 0.0  # the ``alive`` mark of the stall last traced: once per stall
        while True:
            time.sleep(self.stall / 2)
            alive = self.alive
            held = time.monotonic() - alive - self.interval
            if held >= self.stall and alive != traced:
                traced = alive
                frame = sys._current_frames().get(self.loop_thread)
                if frame is not None:
                    stack = "".join(traceback.format_stack(frame, limit=25))
                    log.warning("event loop held for %.0f ms so far, at:\n%s", held * 1000, stack)


def _start_watchdog(interval: float) -> _Watchdog | None:
    try:
        stall = float(os.environ.get(STALL_TRACE_ENV, "0"))
    except ValueError:
        stall = 0.0
    if stall <= 0:
        return None
    watchdog = _Watchdog(threading.get_ident(), stall, interval)
    watchdog.start()
    return watchdog
