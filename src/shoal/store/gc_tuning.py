"""The garbage collector's settings for a process that holds a large store.

A manager keeps every object of the cluster in memory: with 100,000 tasks, about three
million objects the cyclic collector tracks. CPython collects its young generation every
``threshold0`` net allocations, the middle one every ``threshold1`` young collections, and
the old one (everything that survived) every ``threshold2`` middle ones, once a quarter more
objects reached it since the last time. Each collection holds the event loop (raft's ticks and
heartbeats included) for as long as it walks its generations:

- a full collection over a store of 100,000 tasks takes 1-2 s on a 2-core machine (about
  0.7 us an object), longer than raft's election timeout;
- a collection of the middle generation walks whatever survived up to ``threshold1`` young
  collections: with the earlier settings (100,000 and 20) up to two million objects while
  tasks were being created, 0.24-0.47 s at 20,000 tasks (issue 15, ``bench/fleet.py`` with a
  collector callback).

Store objects rarely form cycles (objects refer to one another by ID), and reference counting
frees them; what the collector finds on a manager is young: gRPC's per-call handler details
and closed sockets, found by young collections. Full collections found 0 to 318 objects in the
same runs. So here the collector walks young objects only: a young collection every 50,000
allocations and a middle one every 2 of those (it walks at most about 150,000 objects), and
the old generation is left to a full collection the daemon schedules itself
(``daemon/old_generation.py``), at a time that can afford it. Placing 100,000 tasks on 1,000
nodes (``bench/scheduler.py``, store built included): the longest middle collection 892 ->
139 ms, the longest young one 167 -> 22 ms, all collections 2.46 -> 2.31 s. Smaller young
generations cost more in all (10,000 and 5: 4.0 s): objects still alive when walked, that
would have died before a later collection, are walked again in the middle generation.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 2
# The collector's own schedule never reaches the old generation (its counter is the number of
# middle collections since the last full one: this many would take years).
OLD_THRESHOLD = 2**31 - 1


def tune_gc() -> None:
    """Set the collector for a process holding a large store (a manager, a fleet of simulated
    nodes); harmless elsewhere. Whoever calls it runs full collections itself, or accepts that
    cyclic garbage old enough to reach the old generation stays until the process ends."""
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


@contextmanager
def building_long_lived() -> Iterator[None]:
    """Around building a large state that will live on (a store restored from a snapshot):
    no collection meanwhile, and what exists at the end is moved where no collection walks
    it (``gc.freeze``). Every object built would otherwise be walked by the young and middle
    collections while it is built (restoring 100,000 tasks: 5.1-5.7 s with them, 4.8-4.9 s
    without), and once more by the next full collection, whose first comes soon after a
    manager starts (0.7 s on a quiet machine; 1.8-2.6 s on a restarted manager under the
    1,000-node fleet, fleet-1000-s29-st2 and -main1, while it was catching up).

    Frozen objects are still freed by reference counting, as store objects are (they form
    no cycles); a cycle frozen here, garbage already or later, stays until the process ends:
    at start-up, or at a snapshot's rare install from a leader, there are few."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
