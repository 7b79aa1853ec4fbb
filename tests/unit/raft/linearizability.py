"""A linearizability checker for a key-value store of registers (Wing & Gong's search, with
Lowe's memoisation), checked key by key: linearizability is local, so a history is
linearizable iff each key's sub-history is.

Every written value must be unique (the simulation's clients make it so). A write whose
outcome is unknown (timed out, its node crashed) has no response: it may have taken effect
at any point after its invocation, or never. Reads without a response are left out: they
had no effect and told nobody anything.
"""

import math
import sys
from collections import defaultdict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Op:
    client: int
    kind: str  # "w" or "r"
    key: str
    value: Any  # the value written, or the value the read returned (None: absent)
    invoke: float
    response: float | None  # None: unknown outcome (writes only)


class NotLinearizable(AssertionError):
    def __init__(self, key: str, ops: list[Op]) -> None:
        lines = [f"history of key {key!r} is not linearizable:"]
        for o in sorted(ops, key=lambda o: o.invoke):
            resp = "?" if o.response is None else f"{o.response:.3f}"
            lines.append(f"  c{o.client} {o.kind} {o.value!r} [{o.invoke:.3f}, {resp}]")
        super().__init__("\n".join(lines))


class SearchTooLarge(AssertionError):
    pass


def check(history: list[Op], max_states: int = 2_000_000) -> None:
    by_key: dict[str, list[Op]] = defaultdict(list)
    for op in history:
        by_key[op.key].append(op)
    for key in sorted(by_key):
        if not _linearizable(by_key[key], max_states):
            raise NotLinearizable(key, by_key[key])


def _linearizable(ops: list[Op], max_states: int) -> bool:
    read_values = {o.value for o in ops if o.kind == "r"}
    ops = [
        o
        for o in ops
        if not (o.kind == "r" and o.response is None)
        # An unacknowledged write nobody read can always be taken to have failed.
        and not (o.kind == "w" and o.response is None and o.value not in read_values)
    ]
    ops.sort(key=lambda o: o.invoke)
    n = len(ops)
    invoke = [o.invoke for o in ops]
    resp = [math.inf if o.response is None else o.response for o in ops]
    full = (1 << n) - 1
    seen: set[tuple[int, Any]] = set()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * n + 1000))

    def search(done: int, value: Any) -> bool:
        if done == full:
            return True
        key = (done, value)
        if key in seen:
            return False
        seen.add(key)
        if len(seen) > max_states:
            raise SearchTooLarge(f"more than {max_states} states for {n} operations")
        pending = [i for i in range(n) if not done >> i & 1]
        horizon = min(resp[i] for i in pending)
        for i in pending:
            if invoke[i] > horizon:
                break  # some pending operation finished before this one began
            op = ops[i]
            if op.kind == "w":
                if search(done | 1 << i, op.value):
                    return True
            elif op.value == value and search(done | 1 << i, value):
                return True
        return False

    try:
        return search(0, None)
    finally:
        sys.setrecursionlimit(limit)
