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
either may stand for the other. A part shared already (found by its id) costs a dict lookup:
the leader's writers mostly store copies of stored tasks, which keep their parts.

A task decoded from JSON (a follower's raft entries, a snapshot restored, the log replayed at
a restart) is given its shared parts before it is validated (``decode_task``): a part's JSON
values, as text, name the instance an earlier task decoded from the same text, and pydantic
takes an instance as it is. Decoding the template of every task only to find it shared was
a third of a task's decoding (20,000 tasks: 22.7 us a task, 16.3 us so), and each found part
cost its serialization besides.
"""

import json
import sys
from typing import Any

from shoal.api.base import Model, share_field_sets
from shoal.api.objects import Task

# A part's JSON values as text, to look it up by (compact, as the log holds it: the text
# only has to be the same for the same values, each time).
_text_of_values = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, check_circular=False
).encode

Key = tuple[type, str]

# The parts of a task that are the same for the tasks of one service (of one version of its
# spec): the template, the service's name and labels, the endpoint.
SHARED_TASK_PARTS = ("Spec", "ServiceAnnotations", "Endpoint")

# Sweep the instances no task holds any more once there are this many (and after, twice as
# many as a sweep left): a service updated often leaves one behind per version of its spec.
FIRST_SWEEP = 1024


class Interner:
    def __init__(self) -> None:
        self._by_text: dict[Key, Model] = {}
        # The key of each instance in ``_by_text``, by its id (alive while there).
        self._keys: dict[int, Key] = {}
        # The key of the instance decoded from a part's JSON values, by the part's name and
        # those values' text (see ``decode_task``).
        self._by_values: dict[tuple[str, str], Key] = {}
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

    def decode_task(self, raw: dict[str, Any]) -> Task:
        """The task ``raw`` holds (JSON values: a raft entry's, a snapshot's), decoded and
        validated with its shared parts in it, ready to store (``task`` is done). ``raw`` is
        the caller's no longer (a part found shared replaces its values there)."""
        decoded: list[tuple[str, str]] = []  # (name, text) of the parts decoded here
        for name in SHARED_TASK_PARTS:
            values = raw.get(name)
            if type(values) is not dict:
                continue
            looked_up = (name, _text_of_values(values))
            key = self._by_values.get(looked_up)
            shared = self._by_text.get(key) if key is not None else None
            if shared is not None:
                raw[name] = shared  # taken as it is: an instance is not validated again
            else:
                decoded.append(looked_up)
        task = Task.model_validate(raw)
        share_field_sets(task)  # see share_field_sets: a shared part's are already
        self.task(task)
        parts = task.__dict__
        for looked_up in decoded:
            key = self._keys.get(id(parts[looked_up[0]]))
            if key is not None:
                self._by_values[looked_up] = key
        return task

    def _share(self, values: dict[str, object], name: str) -> None:
        part = values.get(name)
        if part is None or id(part) in self._keys:
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
        self._keys[id(part)] = key

    def clear(self) -> None:
        self._by_text.clear()
        self._keys.clear()
        self._by_values.clear()
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
                del self._keys[id(part)]
            del part
        kept = self._by_text
        self._by_values = {t: k for t, k in self._by_values.items() if k in kept}
        self._sweep_at = max(FIRST_SWEEP, 2 * len(self._by_text))
