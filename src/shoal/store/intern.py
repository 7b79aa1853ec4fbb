"""One instance of each distinct task spec in the store, shared by every task that has it.

Every task of a service carries the service's task template (its ``Spec``), its name and
labels (``ServiceAnnotations``) and its endpoint, copied when the task was made: the same
content 1,000 times for a service of 1,000 replicas. Measured (bench/memory.py, 20,000 tasks
of 20 services), these copies are over half of a stored task's memory: ``Spec`` alone 3.2 KB
of a task's 6.4 KB on the leader, 3.5 KB of 7.8 KB on a follower, which decodes each task's
own copy from the raft log.

So the store keeps one instance per distinct content and gives it to every task stored with
that content (and likewise its status's port list, and one string per service and node ID), on every path into the store (a leader's own proposals, a follower's decoded
ones, a snapshot restored). It may because stored objects are never changed in place: a
writer copies a stored task before changing it (``model_copy`` for the task, a new ``Spec``
for a new spec), and tests check it (``StoredTexts``, with ``SHOAL_CHECK_PROPOSALS``). A part
changed in place would now be seen through every task that shares it, and that check fails
on each of them.

Content is the part's JSON text as the raft log holds it (``to_json_text``): two parts with
the same text decode to the same values field for field (``shoal.store.roundtrip``), so
either may stand for the other. A part shared already (found by its id) costs a set lookup:
the leader's writers mostly store copies of stored tasks, which keep their parts.
"""

import sys

from shoal.api.base import Model
from shoal.api.objects import Task

# The parts of a task that are the same for the tasks of one service (of one version of its
# spec): the template, the service's name and labels, the endpoint.
SHARED_TASK_PARTS = ("Spec", "ServiceAnnotations", "Endpoint")

# Sweep the instances no task holds any more once there are this many (and after, twice as
# many as a sweep left): a service updated often leaves one behind per version of its spec.
FIRST_SWEEP = 1024


class Interner:
    def __init__(self) -> None:
        self._by_text: dict[tuple[type, str], Model] = {}
        self._ids: set[int] = set()  # of the instances in ``_by_text`` (alive while there)
        self._sweep_at = FIRST_SWEEP

    def __len__(self) -> int:
        return len(self._by_text)

    def task(self, task: Task) -> None:
        """Give ``task`` (about to be stored) the shared instance of each of its parts."""
        values = task.__dict__
        for name in SHARED_TASK_PARTS:
            self._share(values, name)
        # Its status's ports: mostly none, yet a model and a dict per task (230 bytes).
        status = values.get("Status")
        if status is not None:
            self._share(status.__dict__, "PortStatus")
        # The IDs it refers to, as one string each: a follower decodes a copy per task.
        for name in ("ServiceID", "NodeID"):
            ref = values.get(name)
            if ref:
                values[name] = sys.intern(ref)

    def _share(self, values: dict[str, object], name: str) -> None:
        part = values.get(name)
        if part is None or id(part) in self._ids:
            return
        assert isinstance(part, Model)
        key = (type(part), part.to_json_text())
        shared = self._by_text.get(key)
        if shared is not None:
            values[name] = shared
            return
        if len(self._by_text) >= self._sweep_at:
            self._sweep()
        self._by_text[key] = part
        self._ids.add(id(part))

    def clear(self) -> None:
        self._by_text.clear()
        self._ids.clear()
        self._sweep_at = FIRST_SWEEP

    def _sweep(self) -> None:
        """Forget the instances only this table holds (no stored task, no reader has them).
        Forgetting one in use costs memory only: the next task with that content is stored
        with its own part, which becomes the shared one."""
        for key in list(self._by_text):
            # References: the dict's value, ``part``, and getrefcount's argument.
            part = self._by_text[key]
            if sys.getrefcount(part) <= 3:
                del self._by_text[key]
                self._ids.discard(id(part))
            del part
        self._sweep_at = max(FIRST_SWEEP, 2 * len(self._by_text))
