"""The garbage collector's settings for a process that holds a large store.

A manager keeps every object of the cluster in memory: with 100,000 tasks, a few million
long-lived Python objects. CPython's cyclic collector runs its young generation every 700
net allocations and, from there, every older generation in turn; each older collection walks
every object that survived so far. Placing or updating tasks allocates a great deal (new
versions, events, proposals), so with default settings the collector walked the whole store
again and again: over half the CPU time of placing 100,000 tasks (bench/scheduler.py).

Store objects rarely form cycles (objects refer to one another by ID), and reference
counting frees them; the collector is only a backstop. A young generation of 100,000
allocations makes collections rare while keeping the memory held by cyclic garbage small.
"""

import gc

YOUNG_THRESHOLD = 100_000
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 100


def tune_gc() -> None:
    """Set the collector for a process holding a large store (a manager); harmless elsewhere."""
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
